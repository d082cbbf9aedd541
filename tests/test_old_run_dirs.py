"""Run dirs written by earlier versions still load: rendered with `generate --checkpoint`, resumed with
`train --resume`. The fixture tests/fixtures/run_v1/ was written before nada_utils/ was regrouped into
subpackages (see tests/fixtures/README.md), with what that version rendered and logged from it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from nada_utils.cli import main

FIXTURES = Path(__file__).resolve().parent / "fixtures"
FLAGS = ["--preset", "tiny", "--checkpoint-every", "2", "--sample-every", "2", "--keep", "1", "--eval-samples", "4",
         "--quiet"]


def test_an_old_run_dir_renders_as_it_did(tmp_path):
    out = tmp_path / "compare.png"
    assert main(["generate", "--checkpoint", str(FIXTURES / "run_v1"), "--compare", "--seeds", "0-3",
                 "--out", str(out)]) == 0
    now = np.asarray(Image.open(out).convert("RGB"), dtype=np.int16)
    then = np.asarray(Image.open(FIXTURES / "run_v1_generate.png").convert("RGB"), dtype=np.int16)
    assert now.shape == then.shape
    assert np.abs(now - then).max() <= 1  # 8-bit rounding; the images are the same


def test_an_old_run_dir_resumes_where_that_version_went_on(tmp_path):
    run = tmp_path / "run_v1"
    shutil.copytree(FIXTURES / "run_v1", run)
    assert main(["train", *FLAGS, "--steps", "6", "--out", str(run), "--resume"]) == 0
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (FIXTURES / "run_v1_resumed_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logged] == [1, 2, 3, 4, 5, 6]
    for row, want in zip(logged[4:], expected):
        assert row["step"] == want["step"]
        assert abs(row["loss"] - want["loss"]) < 1e-4, (row, want)  # float sums differ by thread count
    assert (run / "generator.pt").is_file() and (run / "checkpoints" / "step_000006.pt").is_file()


def test_settings_an_old_version_did_not_write_take_the_values_it_used():
    from nada_utils.adapt.config import TrainConfig

    saved = json.loads((FIXTURES / "run_v1" / "config.json").read_text())
    assert "direction_floor" not in saved  # written before the floor existed
    assert TrainConfig.from_dict(saved).direction_floor == 1e-4  # the clamp that version had, not today's 0.1


def test_a_run_without_a_floor_of_its_own_resumes_with_the_one_it_was_saved_with(tmp_path):
    """A study (or train with a config) asks for the automatic floor, None; a run saved with a number keeps it."""
    from nada_utils.adapt.config import make_config
    from nada_utils.adapt.run_dir import open_run, write_config

    run = tmp_path / "run"
    run.mkdir()
    write_config(run, make_config("tiny", direction_floor=1e-4))
    cfg, _ = open_run(run, None, resume=True, overrides=make_config("tiny").to_dict())
    assert cfg.direction_floor == 1e-4
