"""Block-importance studies: one run per layer strategy, reused or resumed, with table, plot and results export."""

import json

import pytest
from PIL import Image

from nada_utils.adapt.config import make_config
from nada_utils.adapt.trainer import train
from nada_utils.cli import main
from nada_utils.errors import NadaError
from nada_utils.experiments.study import (
    default_strategies,
    export_results,
    main_metric,
    run_study,
    slug,
    study_strategies,
    study_table,
    write_study,
)
from nada_utils.models.generator_io import load_generator


def quiet(message):
    pass


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    root = tmp_path_factory.mktemp("study")
    base = make_config("tiny", steps=4, sample_every=0, checkpoint_every=2)
    rows = run_study(base, ["last:1", "all", "auto:2"], root / "runs", progress=False, log=quiet)
    return base, root, rows


def test_one_finished_run_per_strategy(study):
    base, root, rows = study
    assert [r["layers"] for r in rows] == ["last:1", "all", "auto:2"]
    for r in rows:
        run = root / "runs" / slug(r["layers"])
        assert (run / "generator.pt").is_file()
        assert json.loads((run / "config.json").read_text())["layers"] == r["layers"]
        assert 0 < r["loss_end"] < 2 and r["samples"].endswith("step_000004.png")
    assert main_metric(rows) == "clip_gain"  # no ground truth: the final evaluation's gain towards the target


def test_a_finished_study_is_reused_and_a_changed_one_refused(study):
    base, root, rows = study
    before = {r["layers"]: (root / "runs" / slug(r["layers"]) / "generator.pt").stat().st_mtime_ns for r in rows}
    again = run_study(base, ["last:1", "all", "auto:2"], root / "runs", progress=False, log=quiet)
    assert [r["loss_end"] for r in again] == [r["loss_end"] for r in rows]
    assert before == {r["layers"]: (root / "runs" / slug(r["layers"]) / "generator.pt").stat().st_mtime_ns for r in rows}
    with pytest.raises(NadaError, match="cannot change lr"):
        run_study(make_config("tiny", steps=4, lr=0.05), ["all"], root / "runs", progress=False, log=quiet)


def test_an_interrupted_run_resumes_to_the_same_weights(tmp_path, study):
    base, root, rows = study
    # A run stopped at step 2 (as a disconnect would leave it) is resumed, not restarted.
    train(make_config("tiny", steps=2, sample_every=0, checkpoint_every=2, layers="all"), tmp_path / "all",
          progress=False, log=quiet)
    resumed = run_study(base, ["all"], tmp_path, progress=False, log=quiet)
    assert (tmp_path / "all" / "generator.pt").read_bytes() == (root / "runs" / "all" / "generator.pt").read_bytes()
    assert resumed[0]["loss_end"] == pytest.approx(rows[1]["loss_end"])


def test_every_spec_is_checked_before_training(tmp_path):
    with pytest.raises(NadaError, match="unknown layer spec"):
        run_study(make_config("tiny", steps=2), ["all", "top:3"], tmp_path, progress=False, log=quiet)
    assert not any(tmp_path.iterdir())


def test_table_json_plot_and_results(study, tmp_path):
    base, root, rows = study
    table = study_table(rows)
    assert table.splitlines()[0] == "| layers | clip_gain | directional | structure_clip | loss_end | train s |" and "| `auto:2` |" in table
    paths = write_study(rows, tmp_path / "study", title="tiny", paths=False)
    assert Image.open(paths["plot"]).size[0] > 300
    saved = json.loads(paths["json"].read_text())
    assert saved["title"] == "tiny" and "run_dir" not in saved["rows"][0]
    written = export_results(rows, tmp_path / "results")
    assert {p.relative_to(tmp_path / "results").as_posix() for p in written} >= {
        "last-1/frozen_vs_adapted.png", "all/config.json", "auto-2/frozen_vs_adapted.png"}


def test_default_strategies_cover_every_kind():
    G = load_generator("mini-photo-2")  # 64 px: 5 blocks, 10 W+ indices
    specs = default_strategies(G)
    assert specs[:5] == [f"last:{k}" for k in range(1, 6)]
    assert {"phase:texture", "phase:shape", "all", "auto:2", "auto:8", "gradnorm:4"} <= set(specs)
    assert study_strategies(make_config("tiny"), "all; last:1  auto:2") == ["all", "last:1", "auto:2"]
    assert len(default_strategies(G, fast=True)) == 6


def test_cli_study(tmp_path, capsys):
    code = main(["study", "--preset", "tiny", "--layers", "all", "last:1", "--steps", "2", "--out", str(tmp_path / "runs"),
                 "--results", str(tmp_path / "results"), "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and "| `last:1` |" in out
    assert (tmp_path / "results" / "tiny" / "last-1" / "frozen_vs_adapted.png").is_file()
    assert (tmp_path / "runs" / "tiny" / "study.png").is_file()
    assert main(["study", "--preset", "tiny", "--layers", "bogus", "--out", str(tmp_path / "x")]) == 2
    assert "error: unknown layer spec" in capsys.readouterr().err and not (tmp_path / "x").exists()


def test_study_plot_joins_only_neighbouring_k():
    from nada_utils.measure.plots import consecutive_runs

    # last:1 and last:3 measured, last:2 not: two separate points, no line through K=2.
    assert consecutive_runs([(3, 0.9), (1, 0.5)]) == [[(1, 0.5)], [(3, 0.9)]]
    assert consecutive_runs([(2, 0.2), (1, 0.1), (3, 0.3), (5, 0.5)]) == [[(1, 0.1), (2, 0.2), (3, 0.3)], [(5, 0.5)]]


@pytest.fixture(scope="module")
def seed_study(tmp_path_factory):
    root = tmp_path_factory.mktemp("seeds")
    base = make_config("tiny", steps=4, sample_every=0, checkpoint_every=2)
    rows = run_study(base, ["last:1", "all"], root, seeds=[0, 1], jobs=2, progress=False, log=quiet)
    return base, root, rows


def test_seeds_are_a_study_axis_run_two_at_a_time(seed_study):
    base, root, rows = seed_study
    assert [(r["layers"], r["seed"]) for r in rows] == [("last:1", 0), ("last:1", 1), ("all", 0), ("all", 1)]
    for r in rows:
        saved = json.loads((root / slug(r["layers"]) / f"seed-{r['seed']}" / "config.json").read_text())
        assert saved["seed"] == r["seed"] and saved["layers"] == r["layers"]
    # A worker (one torch thread) gives what this process gives with one thread: the same run, bit for bit.
    import torch

    alone, threads = root.parent / "alone", torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(make_config("tiny", steps=4, sample_every=0, checkpoint_every=2, layers="all", seed=1), alone,
              progress=False, log=quiet)
    finally:
        torch.set_num_threads(threads)
    assert (alone / "generator.pt").read_bytes() == (root / "all" / "seed-1" / "generator.pt").read_bytes()


def test_a_seed_study_skips_finished_runs_and_resumes_interrupted_ones(seed_study, tmp_path):
    base, root, rows = seed_study
    lines = []
    again = run_study(base, ["last:1", "all"], root, seeds=[0, 1], jobs=2, progress=False, log=lines.append)
    assert again == rows and lines == ["4 of 4 run(s) already finished: reused"]
    # A study cut off after one run's first checkpoint picks up there on the rerun, with a third seed added.
    train(make_config("tiny", steps=2, sample_every=0, checkpoint_every=2, layers="all", seed=2), tmp_path / "all" / "seed-2",
          progress=False, log=quiet)
    lines = []
    more = run_study(base, ["all"], tmp_path, seeds=[1, 2], threads=1, progress=False, log=lines.append)
    assert any("seed 2" in line and "(resuming)" in line for line in lines)
    assert [r["seed"] for r in more] == [1, 2]
    assert (tmp_path / "all" / "seed-1" / "generator.pt").read_bytes() == (root / "all" / "seed-1" / "generator.pt").read_bytes()


def test_seed_tables_give_mean_min_and_spread_of_every_metric(seed_study, tmp_path):
    from nada_utils.experiments.study import seed_summary

    base, root, rows = seed_study
    summary = seed_summary(rows)
    assert [s["layers"] for s in summary] == ["last:1", "all"] and summary[0]["seeds"] == [0, 1]
    gains = [r["clip_gain"] for r in rows if r["layers"] == "all"]
    stats = summary[1]["metrics"]["clip_gain"]
    assert stats == pytest.approx({"mean": sum(gains) / 2, "min": min(gains), "max": max(gains),
                                   "spread": max(gains) - min(gains)})
    table = study_table(rows)
    assert table.splitlines()[0].startswith("| layers | seeds | clip_gain mean (min) |")
    assert "`all`, seeds 0, 1:" in table and "| metric | mean | min | max | spread | seed 0 | seed 1 |" in table
    assert f"| clip_gain | {stats['mean']:.3f} | {stats['min']:.3f} | {stats['max']:.3f} |" in table
    paths = write_study(rows, tmp_path, title="tiny seeds", paths=False)
    assert json.loads(paths["json"].read_text())["seeds"][1]["metrics"]["clip_gain"]["min"] == pytest.approx(stats["min"])
    assert Image.open(paths["plot"]).size[0] > 300
    written = export_results(rows, tmp_path / "results")
    assert (tmp_path / "results" / "all" / "seed-1" / "config.json") in written


def test_study_plot_has_bars_from_the_worst_seed_to_the_best():
    from nada_utils.measure.plots import spread_points

    rows = [{"layers": "last:1", "seed": 0, "m": 0.2}, {"layers": "last:1", "seed": 1, "m": 0.6},
            {"layers": "all", "seed": 0, "m": 0.5}]
    assert spread_points(rows, "m") == {"last:1": pytest.approx((0.4, 0.2, 0.6)), "all": (0.5, 0.5, 0.5)}


def test_a_failed_run_is_named_and_the_others_still_finish(tmp_path):
    from nada_utils.experiments.runs import PlannedRun, execute

    good = make_config("tiny", steps=2, sample_every=0, checkpoint_every=0)
    bad = make_config("tiny", steps=2, sample_every=0, checkpoint_every=0, generator=str(tmp_path / "missing.pt"))
    runs = [PlannedRun(tmp_path / "bad", bad, {"run": "bad"}), PlannedRun(tmp_path / "good", good, {"run": "good"})]
    with pytest.raises(NadaError, match=r"1 of 2 run\(s\) failed.*run bad"):
        execute(runs, jobs=2, log=quiet)
    assert (tmp_path / "good" / "generator.pt").is_file()
    with pytest.raises(NadaError, match="planned twice"):
        execute([runs[1], runs[1]], log=quiet)


def test_cli_seed_study(tmp_path, capsys):
    code = main(["study", "--preset", "tiny", "--layers", "all", "--seeds", "0-1", "--steps", "2", "--jobs", "2",
                 "--out", str(tmp_path / "runs"), "--quiet"])
    assert code == 0 and "`all`, seeds 0, 1:" in capsys.readouterr().out
    assert (tmp_path / "runs" / "tiny" / "all" / "seed-1" / "generator.pt").is_file()
    assert main(["study", "--preset", "tiny", "--layers", "all", "--seeds", "x", "--out", str(tmp_path / "y")]) == 2
    assert "bad seeds" in capsys.readouterr().err
    assert main(["study", "--preset", "tiny", "--layers", "all", "--jobs", "0", "--out", str(tmp_path / "z")]) == 2
    assert "--jobs must be >= 1" in capsys.readouterr().err
