"""`--reference` and its switches: each one changes what it names, and a reference run trains,
resumes exactly and is recorded in config.json (docs/REFERENCE.md lists what each switch does)."""

import json

import pytest
import torch
import torchvision.transforms as T

from conftest import make_tiny_generator
from nada_utils.adapt.config import REFERENCE, make_config
from nada_utils.adapt.freezing import (
    layers_for_ws_indices,
    official_layers_for_ws_indices,
    parse_layer_spec,
    static_layers,
)
from nada_utils.adapt.latents import sample_latents
from nada_utils.adapt.setup import build_setup
from nada_utils.adapt.trainer import train
from nada_utils.cli import main
from nada_utils.errors import NadaError
from nada_utils.models.builtin_models import builtin_clip, builtin_generator
from nada_utils.models.clip_arch import clip_preprocess
from nada_utils.models.generator_io import save_generator

CPU = torch.device("cpu")


def first_losses(run_dir):
    return [json.loads(line)["loss"] for line in (run_dir / "log.jsonl").read_text().splitlines()]


def test_reference_sets_every_switch_and_the_official_layer_specs():
    cfg = make_config("tiny", reference=True)
    assert all(getattr(cfg, k) == v for k, v in REFERENCE.items())
    assert make_config("tiny", reference=True, layers="auto:4").layers == "auto-official:4"
    assert make_config("ffhq-sketch", reference=True).layers == "official"  # the README recipe's set
    assert make_config("tiny", reference=True, noise="stored").noise == "stored"  # explicit settings win
    # The defaults are the official code's switches too: seed studies found no departure that beat them.
    # (The floor is chosen at the start: the official none where noise makes ΔI non-zero, `start_floor`.)
    assert all(getattr(make_config("tiny"), k) == v for k, v in REFERENCE.items()
               if k not in ("reference", "freeze_noise", "direction_floor"))
    assert not make_config("tiny").reference


def test_noise_random_gives_each_generator_its_own_noise_so_the_first_direction_is_not_zero(tmp_path):
    G = builtin_generator("random:tiny")
    sizes = [tuple(b.shape[2:]) for b in G.make_noise(1, "const")]
    latents = sample_latents(torch.Generator().manual_seed(0), 2, z_dim=G.z_dim, num_ws=G.num_ws, mixing=0.0,
                             device=CPU, noise_sizes=sizes)
    frozen, trained = latents.noise
    assert len(frozen) == G.num_noises and not torch.equal(frozen[0], trained[0])
    # random:tiny's noise strengths are 0 (fresh layers); this generator's are not, as in trained models.
    generator = str(save_generator(make_tiny_generator(32, w_dim=64), tmp_path / "G.pt"))
    for noise in ("stored", "random"):
        train(make_config("tiny", generator=generator, steps=1, noise=noise, eval_samples=0, sample_every=0,
                          device="cpu"), tmp_path / noise, progress=False)
    assert first_losses(tmp_path / "stored") == [1.0]  # ΔI = 0 exactly: cos is 0
    assert first_losses(tmp_path / "random")[0] != 1.0


def test_clip_precision_fp16_is_one_error_on_a_cpu_and_auto_keeps_float32():
    with pytest.raises(NadaError, match="needs a CUDA GPU"):
        make_config("tiny", clip_precision="fp16", device="cpu")
    with pytest.raises(NadaError, match="needs a CUDA GPU"):  # device "auto" that turns out to be a CPU
        build_setup(make_config("tiny", clip_precision="fp16"), CPU)
    setup = build_setup(make_config("tiny", clip_precision="auto"), CPU)
    assert not setup.guide.half
    assert all(p.dtype == torch.float32 for p in setup.guide.models[0].model.parameters())


def test_clip_in_half_precision_runs_in_float16_and_returns_float32():
    from nada_utils.adapt.clip_guide import ClipGuide

    guide = ClipGuide([("tiny", builtin_clip("random:tiny"), 1.0)], half=True)
    dtypes = {name: p.dtype for name, p in guide.models[0].model.named_parameters()}
    assert dtypes["visual.conv1.weight"] == torch.float16 and dtypes["visual.ln_post.weight"] == torch.float32
    images = torch.rand(2, 3, 32, 32) * 2 - 1
    emb = guide.encode_images(images)[0]
    full = ClipGuide([("tiny", builtin_clip("random:tiny"), 1.0)]).encode_images(images)[0]
    assert emb.dtype == torch.float32
    assert 0 < (emb - full).abs().max() < 0.05 * full.abs().max()  # rounded, not another function


def test_selection_text_bare_aims_the_layer_selection_at_the_text_alone():
    base = dict(templates=True, device="cpu")
    bare = build_setup(make_config("tiny", selection_text="bare", **base), CPU)
    same = build_setup(make_config("tiny", selection_text="templates", **base), CPU)
    assert same.selection_targets is same.global_targets
    assert not torch.allclose(bare.selection_targets[0], bare.global_targets[0])
    assert torch.allclose(bare.directions[0], same.directions[0])  # the training direction is untouched


def test_official_layer_set_and_the_official_one_off_table():
    G = builtin_generator("random:tiny")
    convs = [f"convs.{i}" for i in range(len(G.convs))]
    assert static_layers(parse_layer_spec("official", G), G) == ["conv1", "to_rgb1", *convs]
    assert static_layers(parse_layer_spec("all", G), G) == ["input", "conv1", *convs]
    assert parse_layer_spec("auto-official:3", G).dynamic
    # Index 2: the generator's convs.1 reads it; the official table says convs.0.
    assert official_layers_for_ws_indices(G, [2]) == ["convs.0"]
    assert layers_for_ws_indices(G, [2]) == ["convs.1"]



def test_direction_floor_reaches_the_loss_and_comes_with_stored_noise(tmp_path):
    # The floor is for a start from ΔI = 0, which only stored noise gives; random noise has the official none.
    from nada_utils.adapt.setup import start_floor
    from nada_utils.models.generator_io import load_generator

    assert make_config("tiny").direction_floor is None and make_config("tiny", reference=True).direction_floor == 1e-6
    assert start_floor(load_generator("mini-photo-2"), "random") == 1e-6  # its noise inputs make ΔI non-zero
    assert start_floor(load_generator("mini-photo-2"), "stored") == 0.1
    assert start_floor(builtin_generator("random:tiny"), "random") == 0.1  # fresh layers: noise strengths 0
    assert start_floor(builtin_generator("random:sg3-t-tiny"), "random") == 0.1  # StyleGAN3 has no noise inputs
    runs = {}
    for floor in (0.1, 1e-4):
        run = tmp_path / str(floor)
        assert main(["train", "--preset", "tiny", "--steps", "3", "--noise", "stored", "--direction-floor", str(floor),
                     "--sample-every", "0", "--eval-samples", "0", "--out", str(run), "--quiet"]) == 0
        assert json.loads((run / "config.json").read_text())["direction_floor"] == floor
        runs[floor] = first_losses(run)
    assert runs[0.1][0] == runs[1e-4][0] == 1.0  # ΔI = 0 at step 1 under either floor
    assert runs[0.1][1:] != runs[1e-4][1:]  # the first gradient's size differs, so does every step after it

def test_official_resize_is_bicubic_without_antialiasing_as_torchvision_did():
    x = torch.rand(2, 3, 64, 48) * 2 - 1
    official = clip_preprocess(x, 32, resize="official")
    pipeline = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BICUBIC, antialias=False), T.CenterCrop(32)])
    expected = (pipeline((x + 1) / 2) - torch.tensor([0.48145466, 0.4578275, 0.40821073])[:, None, None]) / \
        torch.tensor([0.26862954, 0.26130258, 0.27577711])[:, None, None]
    assert torch.allclose(official, expected, atol=1e-5)
    assert (official - clip_preprocess(x, 32)).abs().max() > 1e-2


def test_a_reference_run_trains_and_resumes_bitwise(tmp_path):
    flags = ["train", "--preset", "tiny", "--reference", "--layers", "auto:2", "--checkpoint-every", "2",
             "--sample-every", "0", "--eval-samples", "0", "--quiet"]
    assert main([*flags, "--steps", "4", "--out", str(tmp_path / "whole")]) == 0
    assert main([*flags, "--steps", "2", "--out", str(tmp_path / "split")]) == 0
    assert main([*flags, "--steps", "4", "--out", str(tmp_path / "split"), "--resume"]) == 0
    cfg = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert cfg["reference"] and cfg["noise"] == "random" and cfg["layers"] == "auto-official:2"
    assert first_losses(tmp_path / "whole") == first_losses(tmp_path / "split")
    whole, split = (torch.load(tmp_path / d / "generator.pt", weights_only=True)["g_ema"] for d in ("whole", "split"))
    assert all(torch.equal(whole[k], split[k]) for k in whole)


def test_a_mini_world_preset_runs_with_reference(tmp_path):
    assert main(["train", "--preset", "mini-sketch", "--reference", "--steps", "2", "--eval-samples", "0",
                 "--out", str(tmp_path / "mini"), "--quiet"]) == 0
    assert json.loads((tmp_path / "mini" / "metrics.json").read_text())["gap_closed"] is not None
    assert make_config("mini-sketch").freeze_noise and not make_config("mini-sketch", reference=True).freeze_noise


def test_independent_mixing_cutoff_gives_g_train_a_cutoff_of_its_own():
    G = builtin_generator("random:tiny")
    seen = set()
    for seed in range(20):
        latents = sample_latents(torch.Generator().manual_seed(seed), 2, z_dim=G.z_dim, num_ws=G.num_ws, mixing=1.0,
                                 device=CPU, independent_cutoff=True)
        seen.add(latents.cutoff != latents.cutoff_train)
        if latents.cutoff != latents.cutoff_train:
            assert not torch.equal(latents.ws(G, 1.0), latents.ws(G, 1.0, train=True))
    assert seen == {True, False}  # drawn independently: sometimes equal, mostly not
    shared = sample_latents(torch.Generator().manual_seed(0), 2, z_dim=G.z_dim, num_ws=G.num_ws, mixing=1.0, device=CPU)
    assert shared.cutoff_train is None and torch.equal(shared.ws(G, 1.0), shared.ws(G, 1.0, train=True))
