"""The generator computes the published StyleGAN2 function, in the exact rosinality layout."""

import pytest
import torch
from reference_impls import ros_mapping, ros_synthesis

from conftest import make_tiny_generator
from nada_utils import load_generator, save_generator
from nada_utils.models.stylegan2 import Generator, default_channels, style_mix


def rel_err(out, ref):
    return ((out - ref).norm() / ref.norm()).item()


@pytest.mark.parametrize("res,channel_max,cm,n_mlp", [(32, 16, 2, 2), (64, 32, 1, 3), (128, 8, 2, 8), (1024, 4, 2, 2)])
def test_matches_reference_on_z_and_wplus_paths(res, channel_max, cm, n_mlp):
    G = make_tiny_generator(res, channel_max=channel_max, channel_multiplier=cm, n_mlp=n_mlp)
    sd = G.state_dict()
    noise = [sd[f"noises.noise_{i}"] for i in range(G.num_noises)]
    z = torch.randn(2, G.z_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out_z = G(z, noise_mode="const")
        w = ros_mapping(sd, z)
        ref_z = ros_synthesis(sd, w[:, None].repeat(1, G.num_ws, 1), noise)
        assert rel_err(out_z, ref_z) < 1e-4
        # W+ path: every index different, so a layer reading the wrong index shows.
        ws = torch.randn(2, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(2))
        assert rel_err(G.synthesis(ws, noise_mode="const"), ros_synthesis(sd, ws, noise)) < 1e-4
        assert rel_err(G.synthesis(ws, noise_mode="none"), ros_synthesis(sd, ws, [None] * G.num_noises)) < 1e-4
    assert out_z.shape == (2, 3, res, res)


def test_api_attributes_and_shapes(tiny_G):
    G = tiny_G
    assert (G.img_resolution, G.w_dim, G.z_dim, G.num_ws) == (32, 32, 32, 8)
    z = torch.randn(3, G.z_dim)
    ws = G.mapping(z)
    assert ws.shape == (3, G.num_ws, G.w_dim)
    assert G.synthesis(ws).shape == (3, 3, 32, 32)
    # Random noise differs between calls; const is deterministic.
    assert not torch.equal(G.synthesis(ws, noise_mode="random"), G.synthesis(ws, noise_mode="random"))
    assert torch.equal(G.synthesis(ws), G.synthesis(ws))
    with pytest.raises(ValueError, match="noise_mode"):
        G.synthesis(ws, noise_mode="fixed")
    with pytest.raises(ValueError, match=r"z must have shape \[N, 32\]"):
        G.mapping(torch.randn(3, 7))
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(torch.randn(3, 5, 32))


def test_truncation_uses_w_avg(tiny_G):
    G = tiny_G
    z = torch.randn(4, G.z_dim)
    ws = G.mapping(z, truncation_psi=0.0)
    assert torch.allclose(ws, G.w_avg.expand_as(ws))
    half = G.mapping(z, truncation_psi=0.5)
    assert torch.allclose(half, 0.5 * (G.mapping(z) + G.w_avg), atol=1e-6)
    cut = G.mapping(z, truncation_psi=0.0, truncation_cutoff=3)
    assert torch.allclose(cut[:, :3], G.w_avg.expand(4, 3, -1)) and torch.equal(cut[:, 3:], G.mapping(z)[:, 3:])


def test_style_mixing(tiny_G):
    G = tiny_G
    z1, z2 = torch.randn(2, G.z_dim), torch.randn(2, G.z_dim)
    mixed = style_mix(G.mapping(z1), G.mapping(z2), 3)
    assert torch.equal(mixed[:, :3], G.mapping(z1)[:, :3]) and torch.equal(mixed[:, 3:], G.mapping(z2)[:, 3:])
    assert torch.equal(G(z1, mix_z=z2, mix_cutoff=3), G.synthesis(mixed))
    assert torch.equal(G(z1, mix_z=z2, mix_cutoff=G.num_ws), G(z1))


def expected_config_f_shapes(size=1024, cm=2, w=512, n_mlp=8):
    """The rosinality config-f key/shape table, written from the published description (NADA_FACTS 6)."""
    ch = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm, 1024: 16 * cm}
    shapes = {}
    for i in range(1, n_mlp + 1):
        shapes[f"style.{i}.weight"], shapes[f"style.{i}.bias"] = (w, w), (w,)
    shapes["input.input"] = (1, 512, 4, 4)

    def styled(p, cin, cout, up):
        shapes[f"{p}.conv.weight"] = (1, cout, cin, 3, 3)
        shapes[f"{p}.conv.modulation.weight"], shapes[f"{p}.conv.modulation.bias"] = (cin, w), (cin,)
        if up:
            shapes[f"{p}.conv.blur.kernel"] = (4, 4)
        shapes[f"{p}.noise.weight"], shapes[f"{p}.activate.bias"] = (1,), (cout,)

    def rgb(p, cin, up):
        shapes[f"{p}.conv.weight"] = (1, 3, cin, 1, 1)
        shapes[f"{p}.conv.modulation.weight"], shapes[f"{p}.conv.modulation.bias"] = (cin, w), (cin,)
        shapes[f"{p}.bias"] = (1, 3, 1, 1)
        if up:
            shapes[f"{p}.upsample.kernel"] = (4, 4)

    styled("conv1", 512, 512, False)
    rgb("to_rgb1", 512, False)
    cin, res, b = 512, 8, 0
    while res <= size:
        styled(f"convs.{2 * b}", cin, ch[res], True)
        styled(f"convs.{2 * b + 1}", ch[res], ch[res], False)
        rgb(f"to_rgbs.{b}", ch[res], True)
        cin, res, b = ch[res], res * 2, b + 1
    for i in range(2 * (b + 1) - 1):
        r = 2 ** ((i + 5) // 2)
        shapes[f"noises.noise_{i}"] = (1, 1, r, r)
    return shapes


def test_config_f_1024_checkpoint_loads_strictly(tmp_path):
    shapes = expected_config_f_shapes()
    assert len(shapes) == 171
    gen = torch.Generator().manual_seed(0)
    sd = {k: torch.randn(s, generator=gen) for k, s in shapes.items()}
    latent_avg = torch.randn(512, generator=gen)
    torch.save({"g_ema": sd, "latent_avg": latent_avg, "g": {}, "d": {}, "args": None}, tmp_path / "ffhq.pt")
    G = load_generator(tmp_path / "ffhq.pt")
    assert (G.img_resolution, G.num_ws, G.z_dim, G.w_dim) == (1024, 18, 512, 512)
    ours = G.state_dict()
    assert set(ours) == set(sd)
    for k in sd:
        # The FIR kernels are constants of the architecture; the rest must be exactly the file's.
        if not k.endswith("kernel"):
            assert torch.equal(ours[k], sd[k]), k
    assert torch.equal(G.w_avg, latent_avg) and G.w_avg_source == "checkpoint"


@pytest.mark.parametrize("res", [32, 64, 128, 256, 512, 1024])
@pytest.mark.parametrize("cm", [1, 2])
def test_layout_for_every_resolution(res, cm):
    G = Generator(res, channel_multiplier=cm, n_mlp=8).to("meta")
    got = {k: tuple(v.shape) for k, v in G.state_dict().items()}
    assert got == expected_config_f_shapes(res, cm)
    assert G.num_ws == 2 * (res.bit_length() - 1) - 2


def test_save_load_round_trip_is_exact(tmp_path, tiny_G):
    path = save_generator(tiny_G, tmp_path / "g.pt")
    G2 = load_generator(path)
    for k, v in tiny_G.state_dict().items():
        assert torch.equal(v, G2.state_dict()[k]), k
    assert torch.equal(G2.w_avg, tiny_G.w_avg)
    z = torch.randn(2, tiny_G.z_dim)
    assert torch.equal(tiny_G(z, truncation_psi=0.7), G2(z, truncation_psi=0.7))
    # A rosinality tool reads it with plain torch.load(weights_only=True) and strict load_state_dict.
    ckpt = torch.load(path, weights_only=True)
    fresh = Generator(32, w_dim=32, n_mlp=2, channels=default_channels(32, 2, 16))
    fresh.load_state_dict(ckpt["g_ema"], strict=True)
    assert not list(tmp_path.glob(".*tmp*"))


def test_missing_latent_avg_is_estimated(tmp_path, tiny_G):
    torch.save(tiny_G.state_dict(), tmp_path / "bare.pt")
    G = load_generator(tmp_path / "bare.pt")
    assert G.w_avg_source.startswith("estimated")
    assert torch.allclose(G.w_avg, tiny_G.estimate_w_avg())
