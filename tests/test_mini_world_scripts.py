"""The mini world's training scripts resume exactly: a run stopped and continued writes the same file."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts" / "mini_world"

CASES = {
    "train_judge.py": ["--steps", "6", "--batch", "8", "--pool", "24", "--eval-n", "14"],
    "train_clip_v2.py": ["--steps", "6", "--batch", "8", "--pool", "24", "--eval-n", "14"],
    "train_generator_v2.py": ["--steps", "4", "--batch", "2"],
}


def run(script, args, out, state):
    done = subprocess.run([sys.executable, str(SCRIPTS / script), *args, "--out", str(out), "--state", str(state),
                           "--device", "cpu"], capture_output=True, text=True, timeout=600,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("script", sorted(CASES))
def test_a_stopped_training_continues_to_the_same_weights(tmp_path, script):
    args = CASES[script]
    run(script, args, tmp_path / "whole.pt", tmp_path / "whole.state")
    out = run(script, [*args, "--stop-after", "2"], tmp_path / "split.pt", tmp_path / "split.state")
    assert "stopped at step 2" in out
    out = run(script, args, tmp_path / "split.pt", tmp_path / "split.state")
    assert "resumed" in out
    whole, split = (torch.load(tmp_path / f, weights_only=True) for f in ("whole.pt", "split.pt"))
    whole, split = (w.get("g_ema", w.get("state_dict", w)) for w in (whole, split))
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    # Other settings than the run was started with are refused, not mixed in.
    failed = subprocess.run([sys.executable, str(SCRIPTS / script), *args[:1], "99", *args[2:], "--out",
                             str(tmp_path / "split.pt"), "--state", str(tmp_path / "split.state"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=600)
    assert failed.returncode != 0 and "was started with" in failed.stderr


def test_the_conditional_generator_starts_from_an_unconditional_one_that_stopped_at_a_step(tmp_path):
    """The shipped generator's two stages: an unconditional run stopped at a step (--stop-at; its file is
    that step's weights), then the conditional one (class = shape) from it, drawing what it drew at first."""
    from nada_utils import load_generator
    from nada_utils.models.rendering import class_input

    args = ["--steps", "6", "--batch", "2", "--channels", "16,16,16,8,8"]
    out = run("train_generator_v2.py", [*args, "--stop-at", "3"], tmp_path / "u.pt", tmp_path / "u.state")
    assert "stopped at step 3" in out and "step 3 " in out
    assert "already at step 3" in run("train_generator_v2.py", [*args, "--stop-at", "3"], tmp_path / "u.pt", tmp_path / "u.state")
    run("train_generator_v2.py", [args[0], "1", *args[2:], "--lr", "0", "--conditional", "--init", str(tmp_path / "u.pt")],
        tmp_path / "c.pt", tmp_path / "c.state")  # one step at lr 0: the starting point itself
    U, C = load_generator(tmp_path / "u.pt"), load_generator(tmp_path / "c.pt")
    assert (U.c_dim, C.c_dim) == (0, 3)
    z = torch.randn(3, U.z_dim, generator=torch.Generator().manual_seed(0))
    for label in range(3):  # the label's weights start at zero: every class draws what U drew
        assert torch.allclose(C(z, class_input(C, torch.full((3,), label))), U(z), atol=1e-5)
