"""Evaluation: the metrics on hand-made embeddings, the best-checkpoint rule, training-time rows, the CLI."""

import json

import pytest
import torch
import torch.nn.functional as F

from nada_utils.adapt.checkpoint import list_checkpoints, save_checkpoint
from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import read_evals
from nada_utils.adapt.trainer import train
from nada_utils.cli import main
from nada_utils.measure import evaluation as ev


def test_pairwise_distance():
    assert ev.mean_pairwise_distance(torch.ones(4, 3)) == pytest.approx(0.0, abs=1e-7)
    assert ev.mean_pairwise_distance(torch.eye(2)) == pytest.approx(1.0)
    assert ev.mean_pairwise_distance(torch.tensor([[1.0, 0], [-1.0, 0], [0, 1.0]])) == pytest.approx((2 + 1 + 1) / 3)
    assert ev.mean_pairwise_distance(torch.ones(1, 3)) == 0.0


def test_clip_metrics_by_hand():
    e = torch.eye(4)
    frozen = torch.stack([e[0], e[1]])  # two different "photos"
    adapted = torch.stack([e[0] + e[2], e[1] + e[2]])  # each moved towards axis 2, by the same amount
    direction, target = e[2], e[2]
    m = ev.clip_metrics(frozen, adapted, direction, target)
    s = 2**-0.5
    assert m["clip_target_frozen"] == pytest.approx(0.0)
    assert m["clip_target_adapted"] == pytest.approx(s)
    assert m["clip_gain"] == pytest.approx(s)
    # ΔI = (s - 1) e0 + s e2 for the first image: cos with e2 = s / sqrt((1 - s)^2 + s^2)
    assert m["directional"] == pytest.approx(s / ((1 - s) ** 2 + s**2) ** 0.5)
    assert m["diversity_frozen"] == pytest.approx(1.0)
    assert m["diversity_adapted"] == pytest.approx(0.5)  # cos of e0+e2 and e1+e2 is 1/2
    assert m["diversity_ratio"] == pytest.approx(0.5)
    assert m["structure_clip"] == pytest.approx(s)


def rows(gains, structure=None, diversity=None):
    structure = structure or [0.0] * len(gains)
    diversity = diversity or [1.0] * len(gains)
    return [{"step": 10 * (i + 1), "clip_gain": g, "structure_clip": s, "diversity_ratio": d}
            for i, (g, s, d) in enumerate(zip(gains, structure, diversity))]


def test_the_checkpoint_to_keep_is_the_last_one():
    """No rule over the CLIP metrics beat the last checkpoint on the mini world's seed studies (docs/BENCHMARKS.md)."""
    step, why = ev.best_step(rows([0.3, 0.5, 0.45], structure=[0.9, 0.8, 0.6], diversity=[1.0, 0.8, 0.2]))
    assert step == 30 and why.startswith("the last checkpoint (step 30 of 3 evaluated)")
    assert ev.best_step(list(reversed(rows([0.1, 0.2]))))[0] == 20  # by step, not by order in the file
    assert ev.best_step([]) == (None, "no evaluated checkpoints")


def test_protected_checkpoint_survives_rotation(tmp_path):
    for step in (10, 20, 30, 40):
        save_checkpoint(tmp_path, {"step": step, "G_train": {}}, keep=2, protect={10})
    assert [s for s, _ in list_checkpoints(tmp_path)] == [10, 30, 40]


def test_training_evaluates_every_checkpoint_and_keeps_the_best(tmp_path, monkeypatch):
    import nada_utils.adapt.trainer as trainer

    monkeypatch.setattr(trainer, "best_step", lambda rows: (5, "test"))  # pretend the first one is best
    run = tmp_path / "run"
    train(make_config("tiny", steps=15, checkpoint_every=5, keep=1, eval_samples=6), run, progress=False, log=lambda _: None)
    evals = read_evals(run)
    assert [r["step"] for r in evals] == [5, 10, 15] and all(r["n"] == 6 for r in evals)
    assert set(ev.CLIP_KEYS) <= set(evals[0])
    assert [s for s, _ in list_checkpoints(run)] == [5, 15]  # keep=1, plus the protected best
    summary = json.loads((run / "evaluation.json").read_text())
    assert [r["step"] for r in summary["rows"]] == [5, 10, 15] and summary["judge"] == ["random:tiny"]
    assert (run / "evaluation.png").stat().st_size > 1000


def test_resume_redoes_evaluations_after_the_checkpoint(tmp_path):
    run = tmp_path / "run"
    cfg = make_config("tiny", steps=10, checkpoint_every=5, eval_samples=4)
    train(cfg, run, progress=False, log=lambda _: None)
    with open(run / "eval.jsonl", "a") as f:  # as if killed after evaluating step 15, before its checkpoint
        f.write(json.dumps({"step": 15, "clip_gain": 9.0}) + "\n")
    train(None, run, resume=True, overrides={"steps": 20}, progress=False, log=lambda _: None)
    evals = read_evals(run)
    assert [r["step"] for r in evals] == [5, 10, 15, 20] and evals[2]["clip_gain"] != 9.0


def test_mini_world_checkpoints_carry_ground_truth(tmp_path):
    run = tmp_path / "mini"
    train(make_config("mini-sketch", steps=2, batch=2, checkpoint_every=1, sample_every=0, eval_samples=4), run,
          progress=False, log=lambda _: None)
    evals = read_evals(run)
    assert [r["step"] for r in evals] == [1, 2]
    assert all(isinstance(r[k], float) for r in evals for k in ("judged_target", "shape_kept", "edge_f1", "gap_closed"))
    # The mini generator is class-conditional (class = shape): every checkpoint has a row per shape.
    assert all(set(r["ground_truth_per_class"]) == {"circle", "square", "triangle"} for r in evals)


def test_evaluate_cli(tmp_path, capsys):
    run = tmp_path / "run"
    train(make_config("tiny", steps=10, checkpoint_every=5, eval_samples=4), run, progress=False, log=lambda _: None)
    (run / "evaluation.json").unlink()
    assert main(["evaluate", "--run", str(run), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "keep step" in out and (run / "evaluation.json").is_file()
    assert main(["evaluate", "--run", str(run), "--n", "6", "--json", "--device", "cpu"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert [r["step"] for r in summary["rows"]] == [5, 10] and all(r["n"] == 6 for r in summary["rows"])
    assert summary["best"]["step"] in (5, 10) and summary["best"]["checkpoint"].endswith(".pt")
    assert main(["evaluate", "--run", str(run), "--checkpoint", str(run / "generator.pt"), "--n", "6", "--json",
                 "--device", "cpu"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["clip_gain"] == pytest.approx(summary["rows"][-1]["clip_gain"], abs=1e-6)


@pytest.mark.parametrize("args, message", [
    (["--run", "{tmp}/nothing"], "is not a run directory"),
    (["--run", "{run}", "--n", "1"], "--n must be >= 2"),
    (["--run", "{run}", "--faces"], "pip install"),
    (["--run", "{run}", "--clip", "random:nope"], "unknown built-in CLIP"),
])
def test_evaluate_cli_errors(tmp_path, capsys, monkeypatch, args, message):
    import sys

    monkeypatch.setitem(sys.modules, "dlib", None)
    run = tmp_path / "run"
    train(make_config("tiny", steps=2, checkpoint_every=0, eval_samples=0), run, progress=False, log=lambda _: None)
    assert main(["evaluate", *[a.format(tmp=tmp_path, run=run) for a in args], "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_eval_samples_is_checked():
    from nada_utils.errors import NadaError

    with pytest.raises(NadaError, match="--eval-samples must be 0"):
        make_config("tiny", eval_samples=1)


def test_directional_metric_matches_the_training_loss():
    """`directional` on held-out z is 1 - the directional loss training minimises."""
    from nada_utils.adapt.losses import directional_loss

    torch.manual_seed(0)
    f, a = torch.randn(5, 8), torch.randn(5, 8)
    d = F.normalize(torch.randn(8), dim=0)
    m = ev.clip_metrics(f, a, d, d)
    assert m["directional"] == pytest.approx(1 - directional_loss(f, a, d).item(), abs=1e-6)


def test_face_distances_join_the_row(monkeypatch):
    """With --faces, dlib's distances (a stand-in here: CI has no dlib) are summarised over all chunks."""
    import nada_utils.measure.face_descriptors as fd
    from nada_utils.adapt.setup import build_setup

    monkeypatch.setattr(fd, "face_descriptor_distances", lambda a, b: [0.3 if i % 2 else None for i in range(len(a))])
    setup = build_setup(make_config("tiny", templates=False), torch.device("cpu"))
    row = ev.Evaluator(setup.G_frozen, setup.guide, setup.directions, setup.global_targets, n=10, faces=True)(setup.G_train)
    assert row["faces_found"] == 0.5  # chunks of 8 and 2: 4 + 1 faces
    assert row["face_distance"] == pytest.approx(0.3) and row["face_same_person"] == 1.0
    assert row["structure_clip"] == pytest.approx(1.0) and row["clip_gain"] == pytest.approx(0.0, abs=1e-6)
