"""Training: the tiny preset end to end, exact resume after an interruption, every layer strategy.

SIGKILLs at random moments, file writes and Drive pushes included: test_interruptions.py.
"""

import json
import re

import pytest
import torch

from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import read_log
from nada_utils.adapt.trainer import train
from nada_utils.models.generator_io import load_generator


def weights(path):
    return torch.load(path, weights_only=True)["g_ema"]


def assert_same_generator(a, b):
    wa, wb = weights(a), weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """An uninterrupted tiny run of 12 steps, checkpoints every 3."""
    run = tmp_path_factory.mktemp("ref") / "run"
    out = train(make_config("tiny", steps=12, checkpoint_every=3, sample_every=4, keep=2), run, progress=False)
    return run, out


def test_tiny_run_writes_everything(reference_run):
    run, out = reference_run
    assert out == run / "generator.pt" and out.is_file()
    log = read_log(run)
    assert [r["step"] for r in log] == list(range(1, 13))
    assert all(torch.isfinite(torch.tensor(r["loss"])) for r in log)
    assert log[0]["loss"] == pytest.approx(1.0, abs=1e-6)  # step 0: identical generators
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000000.png", "step_000004.png", "step_000008.png", "step_000012.png"]
    best = json.loads((run / "evaluation.json").read_text())["best"]["step"]
    kept = {"step_000009.pt", "step_000012.pt", f"step_{best:06d}.pt"}  # keep=2, and the best checkpoint
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == sorted(kept)
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["steps"] == 12 and cfg["generator"] == "random:tiny"
    ckpt = torch.load(run / "checkpoints" / "step_000012.pt", weights_only=True)
    assert {"step", "G_train", "optimizer", "rng", "config", "directions", "selected_layers", "format_version"} <= set(ckpt)
    # The exported generator differs from the frozen one only in trained layers; mapping and toRGB untouched.
    G0, G1 = load_generator("random:tiny"), load_generator(out)
    for k, v in G0.state_dict().items():
        if k.startswith(("style.", "to_rgb")) or "noises" in k:
            assert torch.equal(v, G1.state_dict()[k]), k
    assert not torch.equal(G0.state_dict()["convs.5.conv.weight"], G1.state_dict()["convs.5.conv.weight"])


def test_resume_after_interruption_is_exact(tmp_path, reference_run):
    _, ref_out = reference_run
    run = tmp_path / "run"

    def crash_at_step_6(path):
        if path.name == "step_000006.pt":
            raise KeyboardInterrupt("simulated disconnect")

    cfg = make_config("tiny", steps=12, checkpoint_every=3, sample_every=4, keep=2)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, run, progress=False, on_save=crash_at_step_6)
    # What a kill can leave behind: a half-written checkpoint under a temporary name, a cut log line.
    (run / "checkpoints" / ".step_000009.pt.tmp-x").write_bytes(b"half a checkpoint")
    with open(run / "log.jsonl", "a") as f:
        f.write('{"step": 7, "los')
    out = train(None, run, resume=True, progress=False)
    assert_same_generator(out, ref_out)
    assert [r["step"] for r in read_log(run)] == list(range(1, 13))


@pytest.mark.parametrize("layers", ["all", "last:2", "phase:texture", "layers:convs.4,convs.5", "auto:3", "gradnorm:3"])
def test_directional_loss_falls_for_every_strategy(tmp_path, layers):
    run = tmp_path / "run"
    train(make_config("tiny", steps=50, batch=8, layers=layers, sample_every=0, checkpoint_every=0), run, progress=False)
    log = read_log(run)
    # Step 1 is exactly 1 (identical generators), so compare steps 2-11 with steps 41-50.
    early = sum(r["loss"] for r in log[1:11]) / 10
    late = sum(r["loss"] for r in log[-10:]) / 10
    assert late < early - 0.05, (layers, early, late)
    if layers.startswith("auto:"):
        assert all(len(r["ws_indices"]) == 3 and len(set(r["ws_indices"])) == 3 for r in log)
        assert all(r["layers"] for r in log)
    if layers.startswith("gradnorm:"):
        assert all(len(r["layers"]) == 3 for r in log)


def test_auto_every_keeps_selection_between_reselections(tmp_path):
    run = tmp_path / "run"
    train(make_config("tiny", steps=6, layers="auto:2", auto_every=3, sample_every=0, checkpoint_every=0), run, progress=False)
    log = read_log(run)
    assert log[0]["ws_indices"] == log[1]["ws_indices"] == log[2]["ws_indices"]
    assert log[3]["ws_indices"] == log[4]["ws_indices"] == log[5]["ws_indices"]


def test_image_guided_direction(tmp_path):
    from PIL import Image

    styles = tmp_path / "styles"
    styles.mkdir()
    for i in range(3):
        Image.new("RGB", (40 + i, 50), (200, 30 * i, 10)).save(styles / f"s{i}.png")
    run = tmp_path / "run"
    train(make_config("tiny", steps=5, style_images=str(styles), sample_every=0, checkpoint_every=0), run, progress=False)
    assert len(read_log(run)) == 5


def test_nan_loss_stops_with_step_and_keeps_last_checkpoint(tmp_path):
    from nada_utils import NadaError
    from nada_utils.cli import main

    run = tmp_path / "run"
    with pytest.raises(NadaError, match=r"loss became nan at step (\d+); the last good checkpoint is (.*step_\d+\.pt)") as info:
        train(make_config("tiny", steps=60, lr=1e30, checkpoint_every=1, sample_every=0), run, progress=False)
    last = sorted((run / "checkpoints").glob("step_*.pt"))[-1]
    nan_step = int(re.search(r"at step (\d+)", str(info.value)).group(1))
    assert str(last) in str(info.value) and last.name == f"step_{nan_step - 1:06d}.pt"
    state = torch.load(last, weights_only=True)
    assert all(torch.isfinite(v).all() for v in state["G_train"].values())
    # "generate --checkpoint renders it", as the message says.
    assert main(["generate", "--checkpoint", str(last), "--seeds", "0-1", "--out", str(tmp_path / "last.png")]) == 0


def test_weights_that_overflow_under_a_finite_loss_are_never_checkpointed(tmp_path):
    from nada_utils import NadaError

    # lr 1e38: step 1's loss is finite (identical generators), its Adam update makes the weights inf.
    with pytest.raises(NadaError, match="the weights became nan or inf at step 1; no checkpoint was written"):
        train(make_config("tiny", steps=5, lr=1e38, checkpoint_every=1, sample_every=0), tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_first_step_moves_like_adam_and_leaves_no_trace_in_its_moments(tmp_path):
    """Step 1 starts from ΔI = 0, whose gradient has an arbitrary size; Adam must not remember it."""
    from nada_utils.adapt.checkpoint import load_checkpoint

    cfg = make_config("tiny", steps=2, checkpoint_every=1, sample_every=0, eval_samples=0, keep=5, device="cpu")
    train(cfg, tmp_path / "run", progress=False)
    G0 = load_generator("random:tiny")
    step1 = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_000001.pt")
    step2 = load_checkpoint(tmp_path / "run" / "checkpoints" / "step_000002.pt")
    moved = torch.cat([(step1["G_train"][k] - v).flatten() for k, v in G0.state_dict().items()]).abs()
    # Adam's first update, lr * g / (|g| + eps): a full learning rate wherever the gradient is not tiny.
    assert moved.max() == pytest.approx(cfg.lr, rel=1e-4)  # float32 rounding of weights near 1
    assert (moved > 0.99 * cfg.lr).float().mean() > 0.5
    assert step1["optimizer"]["state"] == {}  # nothing of step 1's gradient in the moments
    beta2 = cfg.betas[1]
    for s in step2["optimizer"]["state"].values():  # one gradient in them, step 2's: v = (1 - b2) g^2, m = g
        assert int(s["step"]) == 1
        assert torch.allclose(s["exp_avg_sq"], (1 - beta2) * s["exp_avg"].square(), rtol=1e-5, atol=1e-30)
