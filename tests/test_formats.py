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


def test_nvlabs_mapping_lr_multiplier_is_modelled_exactly(tmp_path):
    """A mapping lr_multiplier other than 0.01 changes every w; nada reads it and matches NVlabs' formula."""
    G_ros = make_tiny_generator(32)
    nv = rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg)
    gains = {f"mapping.fc{i}": {"bias_gain": 0.1, "weight_gain": 0.1 / nv[f"mapping.fc{i}.weight"].shape[1] ** 0.5}
             for i in range(G_ros.n_mlp)}
    (tmp_path / "net.pkl").write_bytes(nvlabs_pickle_bytes(nv, tmp_path / "m", settings=gains))
    G = load_generator(tmp_path / "net.pkl")
    assert G.lr_mlp == pytest.approx(0.1)
    z = torch.randn(3, G.z_dim, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        w = G.mapping(z)[:, 0]
        assert rel_err(w, nv_mapping(nv, z, lr_multiplier=0.1)) < 1e-5
        assert rel_err(w, nv_mapping(nv, z, lr_multiplier=0.01)) > 0.01  # the setting matters
    # Saved and reloaded, the generator keeps it (generator.pt carries the architecture).
    from nada_utils import save_generator

    G2 = load_generator(save_generator(G, tmp_path / "g.pt"))
    assert G2.lr_mlp == pytest.approx(0.1)


@pytest.mark.parametrize("settings,buffers,named", [
    ({}, {"synthesis.b8.conv0.resample_filter": torch.tensor([1.0, 2.0, 1.0]).outer(torch.tensor([1.0, 2.0, 1.0])) / 16},
     "resample_filter"),
    ({"": {"img_channels": 1}}, {}, "1-channel"),
    ({"synthesis.b8": {"architecture": "resnet"}}, {}, "'resnet'"),
    ({"synthesis.b8.conv1": {"activation": "relu"}}, {}, "'relu'"),
    ({"synthesis.b8.conv1": {"use_noise": False}}, {}, "use_noise"),
    ({"mapping.fc0": {"bias_gain": 0.1}}, {}, "different lr multipliers"),
])
def test_nvlabs_settings_nada_does_not_model_are_refused(tmp_path, settings, buffers, named):
    """Loaded, they would render wrong images (or fail with a raw error): one NadaError line instead."""
    G_ros = make_tiny_generator(32)
    nv = {**rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg), **buffers}
    (tmp_path / "net.pkl").write_bytes(nvlabs_pickle_bytes(nv, tmp_path / "m", settings=settings))
    with pytest.raises(NadaError, match="refuses other settings") as e:
        load_generator(tmp_path / "net.pkl")
    assert named in str(e.value) and "\n" not in str(e.value)


def test_grayscale_nvlabs_weights_without_attributes_are_refused(tmp_path):
    """A 1-channel toRGB, even in a bare state dict with no attributes to read, is one clear error."""
    G_ros = make_tiny_generator(32)
    nv = rosinality_to_nvlabs(G_ros.state_dict(), G_ros.w_avg)
    for k in [k for k in nv if "torgb" in k and not k.endswith("affine.weight") and not k.endswith("affine.bias")]:
        nv[k] = nv[k][:1]
    torch.save(nv, tmp_path / "gray.pt")
    with pytest.raises(NadaError, match="1-channel images"):
        load_generator(tmp_path / "gray.pt")


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


def test_found_by_fuzzing_opaque_records_keep_dict_items_and_storage_sizes_are_bounded():
    """Two defects the fuzzer found: an Opaque record's APPENDS list hid dict.items (a raw TypeError), and a
    damaged storage size in a pickled tensor made torch.load allocate gigabytes before reading the data."""
    import io
    import warnings

    from nada_utils.weights.safe_pickle import Opaque, _check_storage_size

    o = Opaque()
    o["a"] = 1
    o.append(2)
    assert list(o.items()) == [("a", 1)] and o.appended == [2]
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage's deprecation: NVlabs' pickles hold typed storages
        torch.save(torch.ones(4).storage(), buf, _use_new_zipfile_serialization=False)
    blob = buf.getvalue()
    _check_storage_size(blob)  # the real thing passes
    i = blob.rfind(b"K\x04")  # the declared element count, 4
    with pytest.raises(pickle.UnpicklingError, match="declares 8589934588 bytes"):
        _check_storage_size(blob[:i] + b"J\xff\xff\xff\x7f" + blob[i + 2:])


@pytest.mark.parametrize("opcode", [b"\x95", b"\x8d", b"\x8e"])  # FRAME, BINUNICODE8, BINBYTES8
def test_found_by_fuzzing_a_length_beyond_any_size_is_one_error(tmp_path, opcode):
    """A damaged 8-byte length field makes the unpickler raise OverflowError: refused like any damage."""
    path = tmp_path / "huge.pkl"
    path.write_bytes(b"\x80\x04" + opcode + b"\xff" * 8 + b".")
    with pytest.raises(NadaError, match="not a readable NVlabs pickle"):
        restricted_load(path)
    with pytest.raises(NadaError):
        load_generator(path)


def test_found_by_fuzzing_a_memo_index_beyond_the_opcodes_is_refused_before_unpickling(tmp_path):
    """A damaged LONG_BINPUT index made CPython's unpickler allocate a memo array of 25 GB (the OOM killer
    ended CI). Here an index of 1e8 (under a GB if it got through, so a regression fails instead of crashing)."""
    import struct
    import zipfile

    from nada_utils.weights.safe_pickle import torchscript_tensors

    damaged = b"\x80\x02N" + b"r" + struct.pack("<I", 10**8) + b"."  # None, memo[1e8] = None
    path = tmp_path / "memo.pkl"
    path.write_bytes(damaged)
    with pytest.raises(NadaError, match="not a readable NVlabs pickle.*memo index 100000000"):
        restricted_load(path)
    archive = tmp_path / "clip.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("clip/data.pkl", damaged)
    with pytest.raises(NadaError, match="TorchScript archive but cannot be read.*memo index"):
        torchscript_tensors(archive)
    path.write_bytes(b"\x80\x02N" + b"r" + struct.pack("<I", 0) + b".")  # index 0: what writers write
    assert restricted_load(path) is None
    path.write_bytes(b"\x80\x04\x95" + struct.pack("<Q", 10**9) + b"N.")  # a frame of 1 GB in a 13-byte file
    with pytest.raises(NadaError, match="a frame of 1000000000 bytes in 13"):
        restricted_load(path)


def test_a_damaged_memo_index_in_a_nested_storage_blob_is_refused(tmp_path):
    """NVlabs pickles carry each tensor's storage as a legacy torch.save blob: its header pickles are read
    by an unpickler of ours too, so the same memo check guards them (the last case 10,000 fuzz cases found)."""
    import struct

    from nada_utils.weights.safe_pickle import _check_storage_size

    with pytest.raises(pickle.UnpicklingError, match="memo index 100000000"):
        _check_storage_size(b"\x80\x02N" + b"r" + struct.pack("<I", 10**8) + b".")
