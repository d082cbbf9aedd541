"""SIGKILL the tiny preset at seeded random moments, file writes and Drive pushes included; resume each time.

After every kill, every file under a final name (run dir and mirror) must be complete. Some kills
also wipe the VM: the run dir is deleted and the resume starts from the mirror alone. Each resumed
run must end with a generator bitwise identical to an uninterrupted run, and with every file that run
has. `NADA_KILLS` sets the number of kills (default 20, the documented full count) and
`NADA_KILL_SEED` the seed of the moments (default 2026).
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import torch
from PIL import Image

from drive_sync.mirror import mirrored
from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import LOCK_NAME, read_jsonl
from nada_utils.adapt.trainer import train
from nada_utils.fileio import TMP_MARK

ROOT = Path(__file__).resolve().parent.parent
KILL_POINTS = Path(__file__).resolve().parent / "kill_points.py"
STEPS, KEEP = 12, 2
# Checkpoints every step: a third of the run's time is spent writing and pushing files.
ARGS = ["train", "--preset", "tiny", "--steps", str(STEPS), "--checkpoint-every", "1", "--sample-every", "4",
        "--keep", str(KEEP), "--quiet"]
# Where a kill lands: the N-th call of each operation, N drawn from these ranges (a fresh tiny run
# makes 13 torch.save calls, 66 renames and 45 copies), or a delay before an outside SIGKILL.
MOMENTS = {"save": (1, 6), "rename": (1, 40), "copy": (1, 20), "none": (1.0, 7.0)}


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run: same settings, same mirror layout."""
    base = tmp_path_factory.mktemp("reference")
    cfg = make_config("tiny", steps=STEPS, checkpoint_every=1, sample_every=4, keep=KEEP)
    with mirrored(base / "run", base / "mirror", resume=False) as on_save:
        train(cfg, base / "run", progress=False, on_save=on_save)
    return base / "run", base / "mirror"


def final_files(folder: Path) -> list[Path]:
    """Files under their final names: not temporaries of unfinished writes, not the lock."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and TMP_MARK not in p.name and p.name != LOCK_NAME)


def problem_with(path: Path) -> str | None:
    """Why `path` is not a complete file of its kind, or None."""
    try:
        if path.suffix == ".pt":
            state = torch.load(path, weights_only=True)
            need = {"g_ema"} if path.name == "generator.pt" else {"step", "G_train", "optimizer", "rng"}
            if not need <= set(state):
                return f"missing {need - set(state)}"
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.load()
        elif path.suffix == ".json":
            json.loads(path.read_text())
        elif path.suffix == ".jsonl":
            text = path.read_text()
            if text and not text.endswith("\n"):
                return "last line cut"
            for line in text.splitlines():
                json.loads(line)
        else:
            return "unexpected file"
    except Exception as exc:  # noqa: BLE001 - any failure to read is what this check is for
        return f"{type(exc).__name__}: {exc}"
    return None


def resume_flag(run: Path, mirror: Path) -> list[str]:
    # What a user does: resume a run that was started; a kill before its config was written left none.
    return ["--resume"] if (run / "config.json").exists() or (mirror / "config.json").exists() else []


def same_log(a: Path, b: Path) -> bool:
    def steps(p):
        return [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(p)]

    return steps(a) == steps(b)


def test_sigkill_at_20_seeded_moments_loses_and_corrupts_nothing(tmp_path, reference):
    ref_run, ref_mirror = reference
    kills_wanted = int(os.environ.get("NADA_KILLS", "20"))
    rng = random.Random(int(os.environ.get("NADA_KILL_SEED", "2026")))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    kills, trials, wipes, checked, corrupt = Counter(), 0, 0, 0, []

    while sum(kills.values()) < kills_wanted:
        trials += 1
        run, mirror = tmp_path / f"trial{trials}" / "vm" / "run", tmp_path / f"trial{trials}" / "drive" / "run"
        args = ARGS + ["--out", str(run), "--sync-dir", str(mirror)]
        while True:
            kind = rng.choice(sorted(MOMENTS))
            low, high = MOMENTS[kind]
            at = rng.uniform(low, high) if kind == "none" else rng.randint(low, high)
            resume = resume_flag(run, mirror)
            cmd = [sys.executable, str(KILL_POINTS), kind, str(int(at) if kind != "none" else 0), "--", *args, *resume]
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if kind == "none":
                try:
                    proc.wait(timeout=at)
                except subprocess.TimeoutExpired:
                    proc.send_signal(signal.SIGKILL)
            _, err = proc.communicate(timeout=300)
            if proc.returncode == 0:
                break  # the run finished before the chosen moment came
            assert proc.returncode == -signal.SIGKILL, f"{kind} {at}: exit {proc.returncode}: {err}"
            kills[kind] += 1
            for folder in (run, mirror):
                for path in final_files(folder) if folder.exists() else []:
                    checked += 1
                    if (why := problem_with(path)) is not None:
                        corrupt.append(f"kill {sum(kills.values())} ({kind} {at:g}): {path.relative_to(tmp_path)}: {why}")
            if rng.random() < 0.25:  # the VM is wiped: only the mirror survives
                wipes += 1
                shutil.rmtree(run.parent, ignore_errors=True)
            if sum(kills.values()) >= kills_wanted:
                done = subprocess.run([sys.executable, "-m", "nada_utils", *args, *resume_flag(run, mirror)], cwd=ROOT,
                                      env=env, capture_output=True, text=True, timeout=300)
                assert done.returncode == 0, done.stderr
                break

        # Nothing lost: the resumed run and its mirror hold what the uninterrupted ones hold, byte for byte
        # where the bytes are deterministic (weights, samples); the logs hold the same steps and losses.
        for folder, ref in ((run, ref_run), (mirror, ref_mirror)):
            names = [p.relative_to(folder) for p in final_files(folder)]
            assert names == [p.relative_to(ref) for p in final_files(ref)], folder
            for rel in names:
                if rel.suffix in (".pt", ".png") and rel.parts[0] != "checkpoints" and rel.name != "evaluation.png":
                    assert (folder / rel).read_bytes() == (ref / rel).read_bytes(), rel
            assert same_log(folder / "log.jsonl", ref / "log.jsonl")
            assert same_log(folder / "eval.jsonl", ref / "eval.jsonl")
        for ckpt in final_files(run / "checkpoints"):
            a, b = torch.load(ckpt, weights_only=True), torch.load(ref_run / "checkpoints" / ckpt.name, weights_only=True)
            assert all(torch.equal(a["G_train"][k], b["G_train"][k]) for k in b["G_train"]), ckpt.name

    print(f"\n{sum(kills.values())} kills ({dict(sorted(kills.items()))}) in {trials} runs, {wipes} VM wipes; "
          f"{checked} files under final names checked after the kills, {len(corrupt)} incomplete")
    assert not corrupt, "\n".join(corrupt)
