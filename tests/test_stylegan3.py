"""StyleGAN3 (configs T and R): NVlabs pickles load into nada's StyleGAN3Generator, running no code; the W+ table,
the input transform, the refusals and nada's .pt export. Parity with NVlabs' own code: docs/STYLEGAN3.md."""

import pickle

import numpy as np
import pytest
import torch
from nvlabs_fixtures import fake_nvlabs_modules
from nvlabs_sg3_fixtures import make_tiny_sg3, write_sg3_pickle

from nada_utils import NadaError, load_generator, save_generator
from nada_utils.models.generator_io import generator_checkpoint
from nada_utils.models.stylegan3 import CONFIGS, StyleGAN3Generator, make_transform, synthesis_layout
from nada_utils.models.stylegan3_ops import design_lowpass_filter
from nada_utils.weights import registry


def z_for(G, n=2, seed=0):
    return torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("cfg", ["T", "R"])
def test_nvlabs_pickle_loads_exactly_and_runs_no_code(tmp_path, cfg):
    path, G_src, marker = write_sg3_pickle(tmp_path, cfg)
    G = load_generator(path)
    assert not marker.exists(), "the pickle's embedded source was executed"
    assert isinstance(G, StyleGAN3Generator) and not G.training
    assert (G.z_dim, G.c_dim, G.w_dim, G.num_ws, G.img_resolution, G.img_channels) == (16, 0, 16, 16, 16, 3)
    assert G.arch == G_src.arch and G.arch["conv_kernel"] == {"T": 3, "R": 1}[cfg]
    for k, v in G_src.state_dict().items():
        assert torch.equal(G.state_dict()[k], v), k
    assert torch.equal(G.w_avg, G_src.mapping.w_avg) and G.w_avg_source == "checkpoint"
    z = z_for(G, 3)
    with torch.no_grad():
        img = G(z)
        assert img.shape == (3, 3, 16, 16) and torch.isfinite(img).all()
        assert torch.equal(img, G_src(z))  # same weights, same code: bitwise
        assert torch.equal(G(z), img)  # deterministic: no noise inputs
        assert not torch.equal(G(z, truncation_psi=0.5), img)


def test_fixture_pickle_really_carries_live_code(tmp_path):
    """The check above has teeth: a plain pickle.load of the same bytes executes the embedded source."""
    path, _, marker = write_sg3_pickle(tmp_path, "T")
    with fake_nvlabs_modules(), pytest.raises(SystemExit):
        pickle.loads(path.read_bytes())
    assert marker.exists()


def test_conditional_pickle(tmp_path):
    path, G_src, _ = write_sg3_pickle(tmp_path, "T", c_dim=3)
    G = load_generator(path)
    z, c = z_for(G, 2), torch.eye(3)[[0, 2]]
    with torch.no_grad():
        assert torch.equal(G(z, c), G_src(z, c)) and not torch.equal(G(z, c), G(z, torch.eye(3)[[1, 1]]))
    with pytest.raises(ValueError, match="class-conditional"):
        G(z)


@pytest.mark.parametrize("cfg", ["T", "R"])
def test_ws_layout_is_what_the_forward_pass_reads(cfg):
    """Perturb each W+ slot alone: exactly the layers the table names see a different w (NVlabs: input ws[0],
    layer_names[k] ws[k + 1], the ToRGB the last)."""
    G = make_tiny_sg3(cfg)
    seen: dict[str, torch.Tensor] = {}
    modules = {"synthesis.input": G.synthesis.input,
               **{f"synthesis.{n}": getattr(G.synthesis, n) for n in G.synthesis.layer_names}}
    for name, module in modules.items():
        module.register_forward_pre_hook(lambda m, args, name=name: seen.__setitem__(name, args[-1].clone()))
    ws = G.mapping(z_for(G, 1)) + 0.1 * torch.randn(1, G.num_ws, G.w_dim, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        base_img = G.synthesis(ws)
        base = dict(seen)
        assert set(base) == {name for name, _ in G.ws_layout}
        read_by: dict[int, set[str]] = {}
        for i in range(G.num_ws):
            bumped = ws.clone()
            bumped[:, i] += 1.0
            img = G.synthesis(bumped)
            read_by[i] = {name for name in base if not torch.equal(seen[name], base[name])}
            assert not torch.equal(img, base_img), f"W+ index {i} does not change the image"
    assert read_by == {i: {name for name, index in G.ws_layout if index == i} for i in range(G.num_ws)}
    names = G.synthesis.layer_names
    assert G.num_ws == len(names) + 1 == G.synthesis.num_layers + 2
    assert G.ws_layout == [("synthesis.input", 0)] + [(f"synthesis.{n}", k + 1) for k, n in enumerate(names)]
    assert names[-1].endswith("_3") and G.ws_layout[-1][1] == G.num_ws - 1  # the ToRGB reads the last index


@pytest.mark.parametrize("cfg", ["T", "R"])
def test_input_transform_translates_the_image(cfg):
    """make_transform((tx, ty)) shifts the content by (tx, ty) image widths (x right, y down), as gen_images.py."""
    G = make_tiny_sg3(cfg)
    z = z_for(G, 2, seed=1)
    k, res = 2, G.img_resolution
    with torch.no_grad():
        base = G(z)
        G.synthesis.input.transform.copy_(make_transform((k / res, -k / res), 0))
        moved = G(z)

    def err(a, b):  # away from the borders, where content comes in from outside the margin
        return ((a - b)[..., 2 * k:-2 * k, 2 * k:-2 * k].abs().max() / b.abs().max()).item()

    expected = err(moved, torch.roll(base, (-k, k), (2, 3)))
    assert expected < 0.2 * min(err(moved, base), err(moved, torch.roll(base, (k, -k), (2, 3))))


def test_input_transform_rotates_the_image():
    """Config R (1x1 convs, radial filters) is equivariant to a quarter turn: the image turns with the transform.
    The Fourier features turn exactly, in both configs."""
    G = make_tiny_sg3("R")
    z = z_for(G, 2, seed=1)
    with torch.no_grad():
        base, feats = G(z), G.synthesis.input(G.mapping(z)[:, 0])
        G.synthesis.input.transform.copy_(make_transform((0, 0), 90))
        turned, feats_turned = G(z), G.synthesis.input(G.mapping(z)[:, 0])
    rel = lambda a, b: ((a - b).abs().max() / b.abs().max()).item()
    assert rel(turned, torch.rot90(base, 1, (2, 3))) < 1e-3
    assert rel(turned, base) > 0.1 and rel(turned, torch.rot90(base, -1, (2, 3))) > 0.1
    assert rel(feats_turned, torch.rot90(feats, 1, (2, 3))) < 1e-5
    G_t = make_tiny_sg3("T")
    with torch.no_grad():
        w = G_t.mapping(z)[:, 0]
        feats = G_t.synthesis.input(w)
        G_t.synthesis.input.transform.copy_(make_transform((0, 0), -90))
        assert rel(G_t.synthesis.input(w), torch.rot90(feats, -1, (2, 3))) < 1e-5


@pytest.mark.parametrize("settings,named", [
    ({"": {"img_channels": 1}}, "G_ema.img_channels is 1"),
    ({"": {"_init_kwargs": None}}, "_init_kwargs"),
    ({"synthesis.L3_36_32": {"padding": [9, 8, 9, 9]}}, "L3_36_32.padding"),
    ({"synthesis": {"output_scale": 0.5}}, "output_scale"),
    ({"mapping": {"class_name": "FancyMappingNetwork"}}, "FancyMappingNetwork"),
])
def test_settings_nada_does_not_model_are_refused(tmp_path, settings, named):
    path, _, marker = write_sg3_pickle(tmp_path, "T", settings=settings)
    with pytest.raises(NadaError) as e:
        load_generator(path)
    assert named in str(e.value) and "\n" not in str(e.value) and not marker.exists()


@pytest.mark.parametrize("extra,named", [(dict(img_channels=1), "1-channel"), (dict(fancy_option=2), "fancy_option")])
def test_constructor_arguments_nada_does_not_model_are_refused(tmp_path, extra, named):
    """Recorded in G_ema's _init_kwargs (what NVlabs' train.py passed): refused before anything is built."""
    from nvlabs_sg3_fixtures import sg3_pickle_bytes, tiny_init_kwargs

    (tmp_path / "g.pkl").write_bytes(sg3_pickle_bytes(make_tiny_sg3("T"), tiny_init_kwargs("T", **extra), tmp_path / "m"))
    with pytest.raises(NadaError, match="refuses other settings") as e:
        load_generator(tmp_path / "g.pkl")
    assert named in str(e.value)


@pytest.mark.parametrize("cfg", ["T", "R"])
def test_pt_export_round_trip_with_weights_only(tmp_path, cfg):
    path, _, _ = write_sg3_pickle(tmp_path, cfg)
    G = load_generator(path)
    with torch.no_grad():
        G.synthesis.L2_36_32.weight.mul_(1.5) if cfg == "T" else G.synthesis.L2_36_64.bias.add_(0.5)  # "adapted"
        G.synthesis.input.transform.copy_(make_transform((0.1, 0.0), 30))  # a buffer: saved with the weights
    out = save_generator(G, tmp_path / "adapted.pt")
    raw = torch.load(out, weights_only=True)
    assert set(raw) == {"G_ema", "nada"} and raw["nada"]["model"] == "stylegan3" and raw["nada"]["arch"] == G.arch
    G2 = load_generator(out)
    z = z_for(G, 2)
    with torch.no_grad():
        assert isinstance(G2, StyleGAN3Generator) and torch.equal(G2(z), G(z))
    # A nada training checkpoint of a StyleGAN3 generator (G_train + arch) loads the same way.
    torch.save({"step": 3, "G_train": raw["G_ema"], "arch": G.arch}, tmp_path / "step.pt")
    with torch.no_grad():
        assert torch.equal(load_generator(tmp_path / "step.pt")(z), G(z))
    # Bare weights: the architecture cannot be read off their shapes, so they are refused.
    torch.save(raw["G_ema"], tmp_path / "bare.pt")
    with pytest.raises(NadaError, match="without their architecture"):
        load_generator(tmp_path / "bare.pt")


def test_stylegan2_checkpoints_keep_their_format(tiny_G):
    assert set(generator_checkpoint(tiny_G)) == {"g_ema", "latent_avg", "nada"}


def test_api_mirrors_the_stylegan2_generator():
    G = make_tiny_sg3("T", num_layers=4)  # fewer layers, same code path
    z = z_for(G, 2)
    with torch.no_grad():
        ws = G.mapping(z)
        assert ws.shape == (2, G.num_ws, G.w_dim)
        assert torch.allclose(G.mapping(z, truncation_psi=0)[:, 0], G.w_avg.expand(2, -1))
        cut = G.mapping(z, truncation_psi=0, truncation_cutoff=4)
        assert torch.allclose(cut[:, 3], G.w_avg.expand(2, -1)) and torch.equal(cut[:, 4:], ws[:, 4:])
        img = G.synthesis(ws)
        # No noise inputs: nada's StyleGAN2 callers pass noise_mode and noise=, which change nothing.
        assert G.make_noise(2, "random") == [] and G.num_noises == 0
        assert torch.equal(G.synthesis(ws, noise_mode="random", noise=[]), img)
        mixed = G(z, mix_z=z.flip(0), mix_cutoff=3)
        assert mixed.shape == img.shape and not torch.equal(mixed, img)
    with pytest.raises(ValueError, match="ws must have shape"):
        G.synthesis(ws[:, :-1])
    G.memory_format, G.checkpointing = torch.channels_last, True
    assert G.synthesis.memory_format == torch.channels_last and G.synthesis.checkpointing
    ws = ws.clone().requires_grad_(True)
    G.synthesis(ws).square().mean().backward()
    grad = ws.grad.clone()
    G.memory_format, G.checkpointing = torch.contiguous_format, False
    ws.grad = None
    G.synthesis(ws).square().mean().backward()
    assert torch.allclose(ws.grad, grad, rtol=1e-4, atol=1e-7)


def _names(cfg, res):
    lay = synthesis_layout(img_resolution=res, img_channels=3, num_layers=14, num_critical=2, first_cutoff=2,
                           first_stopband=2**2.1, last_stopband_rel=2**0.3, margin_size=10,
                           channel_base=CONFIGS[cfg]["channel_base"], channel_max=CONFIGS[cfg]["channel_max"])
    return [f"L{i}_{int(s)}_{int(c)}" for i, (s, c) in enumerate(zip(lay["sizes"], lay["channels"]))]


def test_published_layouts_are_nvlabs():
    """Layer names (size, channels) of the published configs, as NVlabs' code builds them."""
    assert _names("T", 1024) == ["L0_36_512", "L1_36_512", "L2_52_512", "L3_52_512", "L4_84_512", "L5_148_512",
                                 "L6_148_512", "L7_276_323", "L8_276_203", "L9_532_128", "L10_1044_81", "L11_1044_51",
                                 "L12_1044_32", "L13_1024_32", "L14_1024_3"]
    assert _names("R", 1024) == ["L0_36_1024", "L1_36_1024", "L2_52_1024", "L3_52_1024", "L4_84_1024", "L5_148_1024",
                                 "L6_148_1024", "L7_276_645", "L8_276_406", "L9_532_256", "L10_1044_161",
                                 "L11_1044_102", "L12_1044_64", "L13_1024_64", "L14_1024_3"]
    assert _names("T", 512)[4:8] == ["L4_84_512", "L5_84_512", "L6_148_512", "L7_148_483"]
    assert _names("R", 256)[:3] == ["L0_36_1024", "L1_36_1024", "L2_36_1024"]


def test_filter_design_matches_scipy_values():
    """Taps NVlabs' design (scipy.signal.firwin / its jinc) gives for R-1024's L1; nada needs no scipy."""
    up = design_lowpass_filter(12, 2.0, 12.0, 32)
    assert np.allclose(up[:6].numpy(), [0.0007919021300040185, 0.010018317960202694, 0.038949523121118546,
                                        0.0924127921462059, 0.1565256118774414, 0.20130185782909393], atol=1e-8)
    down = design_lowpass_filter(12, 3.1748021039363987, 2 * 4.825197896063601, 32, radial=True)
    assert down.shape == (12, 12) and torch.allclose(down, down.t()) and abs(down.sum().item() - 1) < 1e-6
    assert np.allclose(down[0, :6].numpy(), [-5.651319042954128e-06, -2.0317556845839135e-05, -2.2071868443163112e-05,
                                             1.2072452591382898e-05, 7.653814100194722e-05, 0.0001298019924433902], atol=1e-8)
    assert np.allclose(down[5, :6].numpy(), [0.0001298019924433902, 0.001879876828752458, 0.007783485110849142,
                                             0.01894228905439377, 0.03243274614214897, 0.041881635785102844], atol=1e-8)
    assert design_lowpass_filter(1, 2.0, 12.0, 32) is None


def test_registry_lists_the_published_stylegan3_pickles():
    names = {n for n in registry.REGISTRY if n.startswith("stylegan3-")}
    assert names == {f"stylegan3-{c}-{d}" for c in "tr" for d in ("ffhq", "ffhqu", "afhqv2", "metfacesu")}
    for name in names:
        spec = registry.REGISTRY[name]
        assert spec.kind == "generator-nvlabs-pkl" and spec.size is None and spec.sha256 is None
        assert spec.url == f"https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/{spec.filename}"
    assert registry.REGISTRY["stylegan3-r-afhqv2"].filename == "stylegan3-r-afhqv2-512x512.pkl"
