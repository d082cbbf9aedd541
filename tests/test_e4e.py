"""e4e encoder: checkpoint layout, strict loading, the progressive forward and `encode` on tiny models."""

import pytest
import torch
import torch.nn.functional as F

from conftest import make_tiny_generator
from nada_utils.errors import NadaError
from nada_utils.invert.e4e import E4EEncoder, encode, encoder_from_checkpoint, load_e4e
from nada_utils.invert.projection import Projection
from nada_utils.models.generator_io import save_generator
from nada_utils.weights import registry

TINY = {"w_dim": 32, "widths": (16, 16, 32, 32)}  # 8 styles match the 32 px tiny generator (num_ws 8, w_dim 32)


def tiny_encoder(n_styles=8, seed=0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc = E4EEncoder(n_styles, **TINY)
        with torch.no_grad():  # non-trivial BatchNorm statistics and latent_avg, so a mix-up shows
            for name, b in enc.named_buffers():
                if name.endswith("running_mean") or name == "latent_avg":
                    b.copy_(torch.randn_like(b) * 0.1)
                elif name.endswith("running_var"):
                    b.copy_(torch.rand_like(b) + 0.5)
    return enc.eval()


def e4e_checkpoint(enc, *, latent_avg=None):
    """A dict laid out as e4e's Coach saves it: pSp state_dict (encoder + decoder), latent_avg, vars(opts)."""
    sd = {f"encoder.{k}": v for k, v in enc.state_dict().items() if k != "latent_avg"}
    sd["decoder.style.1.weight"] = torch.randn(4, 4)
    return {"state_dict": sd, "latent_avg": enc.latent_avg.clone() if latent_avg is None else latent_avg,
            "opts": {"encoder_type": "Encoder4Editing", "dataset_type": "ffhq_encode", "start_from_latent_avg": True,
                     "progressive_steps": [0, 20000], "device": "cuda:0", "checkpoint_path": None}}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """The tiny 256 px convolutions are latency-bound; one thread keeps them fast on a busy shared CPU."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def image256():
    return torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1


def test_real_architecture_matches_published_keys():
    with torch.device("meta"):
        sd = E4EEncoder().state_dict()
    assert sd["input_layer.0.weight"].shape == (64, 3, 3, 3)
    assert sd["styles.0.convs.0.weight"].shape == (512, 512, 3, 3)
    assert sd["styles.0.linear.weight"].shape == (512, 512) and sd["styles.0.linear.bias"].shape == (512,)
    assert sd["latlayer1.weight"].shape == (512, 256, 1, 1) and sd["latlayer2.weight"].shape == (512, 128, 1, 1)
    assert sd["body.23.res_layer.5.fc2.weight"].shape == (512, 32, 1, 1)
    assert sd["body.3.shortcut_layer.0.weight"].shape == (128, 64, 1, 1)
    assert len({k.split(".")[1] for k in sd if k.startswith("body.")}) == 24
    assert len({k.split(".")[1] for k in sd if k.startswith("styles.")}) == 18
    # 16 px blocks halve 4 times, 32 px 5 times, 64 px 6 times (conv + LeakyReLU each).
    convs = [max(int(k.split(".")[3]) for k in sd if k.startswith(f"styles.{i}.convs.")) // 2 + 1 for i in (2, 3, 6, 7)]
    assert convs == [4, 5, 5, 6]
    # 267M encoder parameters: about 1.07 GB in float32, which with the decoder makes the 1.2 GB file.
    assert 260e6 < sum(v.numel() for v in sd.values()) < 270e6


def test_forward_is_w0_plus_progressive_deltas(image256):
    enc = tiny_encoder()
    with torch.no_grad():
        ws = enc(image256)
        feats, x = [], enc.input_layer(image256)
        for unit in enc.body:
            x = unit(x)
            feats.append(x)
        c1, c2, c3 = feats[6], feats[20], feats[23]
        assert c3.shape[-1] == 16 and c2.shape[-1] == 32 and c1.shape[-1] == 64
        p2 = F.interpolate(c3, size=(32, 32), mode="bilinear", align_corners=True) + enc.latlayer1(c2)
        p1 = F.interpolate(p2, size=(64, 64), mode="bilinear", align_corners=True) + enc.latlayer2(c1)
        w0 = enc.styles[0](c3)
        expect = [w0] + [w0 + enc.styles[i](c3 if i < 3 else p2 if i < 7 else p1) for i in range(1, 8)]
        expect = torch.stack(expect, 1) + enc.latent_avg
    assert ws.shape == (1, 8, 32)
    torch.testing.assert_close(ws, expect)


def test_checkpoint_round_trip_and_encode(tmp_path):
    enc = tiny_encoder()
    path = tmp_path / "e4e_tiny.pt"
    torch.save(e4e_checkpoint(enc), path)
    loaded = load_e4e(path)
    assert not loaded.training and not any(p.requires_grad for p in loaded.parameters())
    ref_sd = enc.state_dict()
    assert loaded.state_dict().keys() == ref_sd.keys()
    assert all(torch.equal(v, ref_sd[k]) for k, v in loaded.state_dict().items())

    G = make_tiny_generator(32)
    before = {k: v.clone() for k, v in G.state_dict().items()}
    image = torch.rand(3, 32, 32) * 2 - 1
    proj = encode(loaded, G, image)
    assert isinstance(proj, Projection) and proj.latent == "w+" and proj.loss_name == "e4e encoder" and proj.losses == []
    assert proj.ws.shape == (1, G.num_ws, G.w_dim)
    x256 = F.interpolate(image[None], size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    with torch.no_grad():  # the loaded encoder, via encode, gives what the original module gives
        torch.testing.assert_close(proj.ws, enc(x256))
    const = G.make_noise(1, "const")
    assert len(proj.noise) == len(const) and all(torch.equal(a, b) for a, b in zip(proj.noise, const))
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())
    G.synthesis(proj.ws, noise=proj.noise)  # usable exactly like a projection


def test_single_row_latent_avg_is_used_at_every_index():
    enc = tiny_encoder()
    row = torch.randn(32)
    loaded = encoder_from_checkpoint(e4e_checkpoint(enc, latent_avg=row))
    assert torch.equal(loaded.latent_avg, row.expand(8, 32))


def test_registry_name_missing_file_names_fetch_command():
    with pytest.raises(NadaError, match="python -m nada_utils fetch e4e-ffhq"):
        load_e4e("e4e-ffhq")
    assert registry.get_spec("e4e-ffhq").kind == "encoder-e4e"
    with pytest.raises(NadaError, match="neither a file nor a registry name"):
        load_e4e("no/such/e4e.pt")


def test_generator_checkpoint_is_not_an_e4e_checkpoint(tmp_path):
    path = save_generator(make_tiny_generator(32), tmp_path / "g.pt")
    with pytest.raises(NadaError, match="is not an e4e checkpoint"):
        load_e4e(path)


def test_mismatched_keys_are_one_clear_line():
    ckpt = e4e_checkpoint(tiny_encoder())
    del ckpt["state_dict"]["encoder.latlayer2.weight"]
    with pytest.raises(NadaError, match="is not an e4e checkpoint") as err:
        encoder_from_checkpoint(ckpt)
    assert "\n" not in str(err.value)


def test_style_count_mismatch():
    G = make_tiny_generator(64)  # 10 ws; the encoder makes 8
    with pytest.raises(NadaError, match="makes 8 ws .* needs 10 .*e4e-ffhq is for ffhq-1024"):
        encode(tiny_encoder(), G, torch.zeros(3, 64, 64))
