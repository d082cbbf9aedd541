"""The fast paths of a training step give the plain path's results (CPU), and the benchmark's accounting."""

import json

import pytest
import torch

from nada_utils.adapt.checks import check_config
from nada_utils.adapt.config import make_config
from nada_utils.adapt.latents import sample_latents
from nada_utils.adapt.setup import build_setup
from nada_utils.adapt.trainer import train
from nada_utils.adapt.training_step import (
    GPU_DEFAULT,
    StepSettings,
    forward_losses,
    parse_fast,
    precision,
    prepare_fast,
)
from nada_utils.cli import main
from nada_utils.errors import NadaError


def tiny_setup():
    return build_setup(make_config("tiny", templates=False), torch.device("cpu"))


def loss_and_grads(setup, fast=(), seed=0):
    """Loss and G_train's gradients for one batch, after G_train has moved away from G_frozen."""
    torch.manual_seed(1)
    with torch.no_grad():
        for p in setup.G_train.parameters():
            p.add_(0.05 * torch.randn_like(p))
    setup.G_train.requires_grad_(True)
    latents = sample_latents(torch.Generator().manual_seed(seed), 3, z_dim=setup.G_frozen.z_dim,
                             num_ws=setup.G_frozen.num_ws, mixing=0.0, device="cpu")
    with precision(fast):
        loss, terms = forward_losses(setup, latents, setup.directions, StepSettings(fast=fast), torch.device("cpu"))
        loss.backward()
    grads = torch.cat([p.grad.flatten() for p in setup.G_train.parameters() if p.grad is not None])
    return loss.detach(), grads


@pytest.fixture(scope="module")
def plain():
    return loss_and_grads(tiny_setup())


def test_parse_fast():
    assert parse_fast("auto", torch.device("cpu")) == ()
    assert parse_fast("auto", torch.device("cuda")) == GPU_DEFAULT
    assert parse_fast("none", torch.device("cuda")) == ()
    assert parse_fast("checkpoint, bf16", torch.device("cpu")) == ("bf16", "checkpoint")
    with pytest.raises(NadaError, match="unknown fast path 'fp8'"):
        parse_fast("bf16,fp8", torch.device("cpu"))
    with pytest.raises(NadaError, match="unknown fast path"):  # checked before training starts
        check_config(make_config("tiny", fast="turbo"))


def test_checkpointing_gives_the_same_gradients(plain):
    setup = tiny_setup()
    prepare_fast(setup, ("checkpoint",))
    loss, grads = loss_and_grads(setup, ("checkpoint",))
    assert torch.equal(loss, plain[0])
    torch.testing.assert_close(grads, plain[1], rtol=1e-5, atol=1e-7)


def test_channels_last_gives_the_same_results(plain):
    setup = tiny_setup()
    prepare_fast(setup, ("channels_last",))
    loss, grads = loss_and_grads(setup, ("channels_last",))
    torch.testing.assert_close(loss, plain[0], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads, plain[1], rtol=1e-4, atol=1e-5)


def test_bf16_autocast_is_close(plain):
    setup = tiny_setup()
    loss, grads = loss_and_grads(setup, ("bf16",))
    assert abs(loss.item() - plain[0].item()) < 0.02 * abs(plain[0].item()) + 1e-3
    assert torch.nn.functional.cosine_similarity(grads, plain[1], dim=0) > 0.98


def test_tf32_switch_is_scoped():
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with precision(("tf32",)):
        assert matmul.fp32_precision == "tf32"
    with precision(()):
        assert matmul.fp32_precision == "ieee"
    assert matmul.fp32_precision == before


def test_compiled_synthesis_matches_eager():
    """torch.compile of the generator (about a minute of compiling on a 2-core CPU)."""
    setup = tiny_setup()
    G = setup.G_train.requires_grad_(True)
    ws = setup.G_frozen.mapping(torch.randn(2, G.z_dim))
    eager = G.synthesis(ws)
    (eager_grad,) = torch.autograd.grad(eager.square().mean(), G.conv1.conv.weight)
    prepare_fast(setup, ("compile",))
    compiled = G.synthesis(ws)
    (compiled_grad,) = torch.autograd.grad(compiled.square().mean(), G.conv1.conv.weight)
    torch.testing.assert_close(compiled, eager, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=1e-6)


def test_training_with_checkpointing_ends_where_plain_training_ends(tmp_path):
    out = {}
    for fast in ("none", "checkpoint"):
        path = train(make_config("tiny", steps=6, fast=fast, sample_every=0, checkpoint_every=0), tmp_path / fast,
                     progress=False, log=lambda _: None)
        out[fast] = torch.load(path, weights_only=True)["g_ema"]
    for key, value in out["none"].items():
        torch.testing.assert_close(out["checkpoint"][key], value, rtol=1e-5, atol=1e-6)


def test_flop_count_of_grouped_convolutions():
    from nada_utils.experiments.bench import count_flops

    x = torch.randn(1, 8, 16, 16, requires_grad=True)
    w = torch.randn(8, 4, 3, 3, requires_grad=True)
    forward = count_flops(lambda: torch.nn.functional.conv2d(x, w, padding=1, groups=2))
    assert forward == 2 * 16 * 16 * 8 * 4 * 9
    y = torch.nn.functional.conv2d(x, w, padding=1, groups=2)
    assert count_flops(lambda: y.sum().backward()) == 2 * forward  # input and weight gradients, once each


def test_memory_estimate_shrinks_with_checkpointing():
    from nada_utils.experiments.bench import _config, estimate_step

    cfg = _config(64, 2, ("tiny",), "all", torch.device("cpu"), "none")
    plain, recompute = estimate_step(cfg), estimate_step(cfg, checkpointing=True)
    assert recompute["flops"] > plain["flops"]  # the recomputed forward
    assert plain["resident_bytes"] < recompute["peak_bytes_estimated"] < plain["peak_bytes_estimated"]


def test_bench_cli(capsys):
    assert main(["bench", "--size", "32", "--clip", "tiny", "--layers", "auto:2", "--steps", "2", "--warmup", "0",
                 "--device", "cpu", "--json"]) == 0
    r = json.loads(capsys.readouterr().out)
    assert r["flops_per_step"] > 0 and r["matmul_flops_per_second"] > 0
    assert r["ratio_to_floor"] == pytest.approx(r["step_seconds"] * r["matmul_flops_per_second"] / r["flops_per_step"])
    assert r["selection_seconds"] > 0 and len(r["step_seconds_all"]) == 2
    assert r["peak_memory_estimated_checkpointing"] < r["peak_memory_estimated"]


@pytest.mark.parametrize("args, message", [
    (["--batch", "0"], "--batch and --steps must be >= 1"),
    (["--clip", "ViT-H/99"], "unknown built-in CLIP"),
    (["--fast", "warp"], "unknown fast path"),
    (["--size", "100"], "invalid choice"),
])
def test_bench_cli_errors(capsys, args, message):
    assert main(["bench", "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
