"""NVlabs pickles (StyleGAN2-ADA PyTorch and TF StyleGAN2) load as the same function, running no code."""

import pickle

import pytest
import torch
import torch.nn.functional as F
from nvlabs_fixtures import fake_nvlabs_modules, nvlabs_pickle_bytes, rosinality_to_nvlabs, tf_pickle_bytes
from reference_impls import nv_mapping, nv_synthesis

from conftest import make_tiny_generator
from nada_utils import NadaError, load_generator
from nada_utils.weights.safe_pickle import restricted_load


def rel_err(a, b):
    return ((a - b).norm() / b.norm()).item()


@pytest.mark.parametrize("c_dim,n_mlp,res", [(0, 8, 64), (10, 2, 32)])
def test_nvlabs_pickle_matches_rosinality_and_runs_no_code(tmp_path, c_dim, n_mlp, res):
    G_ros = make_tiny_generator(res, c_dim=c_dim, n_mlp=n_mlp)
    nv = rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg)
    marker = tmp_path / "pwned.txt"
    (tmp_path / "net.pkl").write_bytes(nvlabs_pickle_bytes(nv, marker, c_dim=c_dim))

    G = load_generator(tmp_path / "net.pkl")
    assert not marker.exists(), "the pickle's embedded source was executed"
    assert G.c_dim == c_dim and G.n_mlp == n_mlp and G.img_resolution == res
    assert torch.equal(G.w_avg, G_ros.w_avg)

    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    c = F.one_hot(torch.tensor([0, 3, 9]), c_dim).float() if c_dim else None
    with torch.no_grad():
        out = G(z, c, noise_mode="const")
        # Same weights in rosinality layout: bitwise the same function.
        assert torch.equal(out, G_ros(z, c, noise_mode="const"))
        # NVlabs' own formulation on the NVlabs tensors (independent of the conversion code).
        w = nv_mapping(nv, z, c)
        ref = nv_synthesis(nv, w[:, None].repeat(1, G.num_ws, 1))
        assert rel_err(out, ref) < 1e-4
        ws = torch.randn(2, G.num_ws, G.w_dim)
        assert rel_err(G.synthesis(ws), nv_synthesis(nv, ws)) < 1e-4


def test_fixture_pickle_really_carries_live_code(tmp_path):
    """The check above has teeth: a plain pickle.load of the same bytes executes the embedded source."""
    G_ros = make_tiny_generator(32)
    marker = tmp_path / "pwned.txt"
    data = nvlabs_pickle_bytes(rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg), marker)
    with fake_nvlabs_modules(), pytest.raises(SystemExit):
        pickle.loads(data)
    assert marker.exists()


def test_tf_pickle_matches_rosinality_and_runs_no_code(tmp_path):
    G_ros = make_tiny_generator(64)
    marker = tmp_path / "pwned.txt"
    (tmp_path / "church.pkl").write_bytes(tf_pickle_bytes(G_ros.state_dict(), G_ros.w_avg, marker))
    G = load_generator(tmp_path / "church.pkl")
    assert not marker.exists()
    for k, v in G_ros.state_dict().items():
        assert torch.allclose(G.state_dict()[k], v, atol=1e-7), k
    z = torch.randn(2, G.z_dim)
    assert rel_err(G(z), G_ros(z)) < 1e-6
    assert torch.equal(G.w_avg, G_ros.w_avg)
    with fake_nvlabs_modules(), pytest.raises(SystemExit):
        pickle.loads((tmp_path / "church.pkl").read_bytes())
    assert marker.exists()


class Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned > /tmp/nada-evil-marker",))


def test_restricted_unpickler_refuses_callables(tmp_path):
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps({"G_ema": Evil()}))
    with pytest.raises(NadaError, match="refused to load global"):
        restricted_load(tmp_path / "evil.pkl")
    (tmp_path / "evil2.pkl").write_bytes(pickle.dumps(getattr))
    with pytest.raises(NadaError):
        restricted_load(tmp_path / "evil2.pkl")


def test_unknown_harmless_globals_become_inert_records(tmp_path):
    """A torch module pickled beside G_ema (its class is a torch global) neither blocks loading nor runs."""
    G_ros = make_tiny_generator(32)
    marker = tmp_path / "pwned.txt"
    data = nvlabs_pickle_bytes(rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg), marker,
                               extra={"augment_pipe": torch.nn.Identity(), "progress": {"step": torch.tensor(3)}})
    (tmp_path / "net.pkl").write_bytes(data)
    z = torch.randn(2, G_ros.z_dim)
    assert torch.equal(load_generator(tmp_path / "net.pkl")(z), G_ros(z))
    assert not marker.exists()


def test_pickle_that_is_not_a_generator(tmp_path):
    (tmp_path / "x.pkl").write_bytes(pickle.dumps({"D": torch.zeros(2)}))
    with pytest.raises(NadaError, match="no G_ema"):
        load_generator(tmp_path / "x.pkl")
    (tmp_path / "t.pkl").write_bytes(pickle.dumps((1, 2, 3)))
    with pytest.raises(NadaError, match="not a TensorFlow StyleGAN2 network pickle"):
        load_generator(tmp_path / "t.pkl")


def test_nvlabs_state_dict_in_a_pt_file(tmp_path):
    G_ros = make_tiny_generator(32)
    torch.save(rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg), tmp_path / "nv.pt")
    G = load_generator(tmp_path / "nv.pt")
    z = torch.randn(2, G.z_dim)
    assert torch.equal(G(z), G_ros(z))
