"""One process trains into a run dir at a time; a lock left by a killed process never blocks a resume."""

import os
import signal
import subprocess
import sys

import pytest

from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import run_lock
from nada_utils.adapt.trainer import train
from nada_utils.errors import NadaError


def tiny_cmd(run, *extra):
    return [sys.executable, "-m", "nada_utils", "train", "--preset", "tiny", "--out", str(run), "--steps", "4",
            "--checkpoint-every", "2", "--quiet", *extra]


def test_a_second_trainer_is_refused(tmp_path):
    run = tmp_path / "run"
    with run_lock(run):
        done = subprocess.run(tiny_cmd(run), capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        assert done.stderr.startswith("error: ") and "is being trained by pid" in done.stderr
        assert f"pid {os.getpid()}" in done.stderr and "Traceback" not in done.stderr
        assert not (run / "config.json").exists()  # the refused process wrote nothing
        with pytest.raises(NadaError, match="is being trained by"):  # in-process callers (notebooks) too
            train(make_config("tiny", steps=2), run, progress=False, log=lambda _: None)
    train(make_config("tiny", steps=2), run, progress=False, log=lambda _: None)  # free again


def test_a_lock_left_by_a_killed_process_does_not_block(tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from nada_utils.adapt.run_dir import run_lock\n"
                               f"with run_lock({str(run)!r}):\n    print('locked', flush=True); time.sleep(120)"],
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    os.kill(holder.pid, signal.SIGKILL)
    holder.wait()
    assert f"pid {holder.pid}" in (run / ".lock").read_text()  # the stale file is still there
    train(make_config("tiny", steps=2), run, progress=False, log=lambda _: None)
    assert (run / "generator.pt").is_file()


def test_a_run_that_fails_before_writing_leaves_no_folder(tmp_path):
    run = tmp_path / "new"
    with pytest.raises(NadaError):
        with run_lock(run):
            raise NadaError("failed early")
    assert not run.exists()
