"""Training: the tiny preset end to end, exact resume after an interruption, every layer strategy.

SIGKILLs at random moments, file writes and Drive pushes included: test_interruptions.py.
"""

import json
import re

import pytest
import torch

from nada_utils.adapt.config import make_config
from nada_utils.adapt.freezing import is_noise_strength
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

    # lr 3e38: step 1's loss is finite (identical generators), its Adam update overflows to inf (Adam computes
    # lr * g before dividing; the old clamp of |ΔI| gives gradients large enough for that).
    cfg = make_config("tiny", steps=5, lr=3e38, checkpoint_every=1, sample_every=0, direction_floor=1e-4)
    with pytest.raises(NadaError, match="the weights became nan or inf at step 1; no checkpoint was written"):
        train(cfg, tmp_path / "run", progress=False)
    assert not (tmp_path / "run").exists()


def test_the_first_step_is_a_full_adam_step_and_its_gradient_the_size_of_the_next(tmp_path):
    """Step 1 starts from ΔI = 0. Without a floor its gradient would be ~1 / |ΔI| times too large, and
    Adam's second moment would remember it and shrink the next hundred updates (docs/REFERENCE.md, "the start of training")."""
    from nada_utils.adapt.checkpoint import load_checkpoint

    def gradients_and_moves(floor):
        run = tmp_path / f"floor-{floor}"
        cfg = make_config("tiny", steps=3, checkpoint_every=1, sample_every=0, eval_samples=0, keep=5, device="cpu",
                          direction_floor=floor)
        train(cfg, run, progress=False)
        states = [load_checkpoint(run / "checkpoints" / f"step_{s:06d}.pt") for s in (1, 2, 3)]
        beta2 = cfg.betas[1]
        # Adam's v after step s is b2 v + (1 - b2) g_s^2: recover each step's squared gradient norm from it.
        v = [sum(float(st["exp_avg_sq"].double().sum()) for st in state["optimizer"]["state"].values()) for state in states]
        squares = [v[0] / (1 - beta2), (v[1] - beta2 * v[0]) / (1 - beta2), (v[2] - beta2 * v[1]) / (1 - beta2)]
        G0 = load_generator("random:tiny")
        moved = torch.cat([(states[0]["G_train"][k] - p).flatten() for k, p in G0.state_dict().items()]).abs()
        return [x ** 0.5 for x in squares], moved, cfg.lr

    (g1, g2, g3), moved, lr = gradients_and_moves(0.1)
    # Adam's first update, lr * g / (|g| + eps): a full learning rate wherever the gradient is not tiny.
    assert moved.max() == pytest.approx(lr, rel=1e-4)  # float32 rounding of weights near 1
    assert (moved > 0.99 * lr).float().mean() > 0.5
    assert g1 < 3 * min(g2, g3)  # a gradient of the size of the next ones, not 1,000 times theirs
    (old1, old2, old3), _, _ = gradients_and_moves(1e-4)  # the clamp of earlier versions: the stall's cause
    assert old1 > 30 * max(old2, old3)


@pytest.mark.parametrize("layers", ["all", "auto:2"])
def test_freeze_noise_keeps_every_noise_strength_and_trains_the_rest(tmp_path, layers):
    """--freeze-noise: the trained layers' noise strengths stay G_frozen's, also when a dynamic spec
    re-selects layers; without it they train, as in the official code."""
    start = load_generator("random:tiny").state_dict()
    for freeze in (True, False):
        run = tmp_path / f"run-{freeze}"
        train(make_config("tiny", steps=4, layers=layers, freeze_noise=freeze, sample_every=0, checkpoint_every=0),
              run, progress=False)
        end = weights(run / "generator.pt")
        noise = [k for k in end if is_noise_strength(k)]
        assert noise and any(not torch.equal(start[k], end[k]) for k in end if k not in noise)
        assert all(torch.equal(start[k], end[k]) for k in noise) == freeze, (layers, freeze)
