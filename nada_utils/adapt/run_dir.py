"""The run directory: its layout, refusing to overwrite another run, and checking resumes.

    RUN_DIR/config.json            the TrainConfig (rewritten when a resume extends the run)
    RUN_DIR/log.jsonl              one JSON line per finished step
    RUN_DIR/eval.jsonl             one JSON line per checkpoint: its evaluation (evaluation.py)
    RUN_DIR/evaluation.json, .png  all evaluations, the best checkpoint and why; metrics over steps
    RUN_DIR/samples/step_NNNNNN.png  top row G_frozen, bottom row G_train, same z
    RUN_DIR/checkpoints/step_NNNNNN.pt
    RUN_DIR/generator.pt           the adapted generator, rosinality format
    RUN_DIR/.lock                  held by the process training here (see `run_lock`)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
from pathlib import Path
from typing import Callable

from nada_utils.adapt.checkpoint import latest_checkpoint, list_checkpoints
from nada_utils.adapt.config import RESUMABLE_FIELDS, TrainConfig
from nada_utils.measure.ground_truth import canonical_ground_truth
from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_write_text


def holds_run(run_dir: Path) -> bool:
    """A run was started here: it can be resumed (from its newest checkpoint, or from step 0)."""
    return (Path(run_dir) / "config.json").is_file() or bool(list_checkpoints(run_dir))


def has_results(run_dir) -> bool:
    """The run here wrote a checkpoint or its generator: work that a new run must never overwrite.

    A start that failed before its first checkpoint (a typo in a model name, a loss that became NaN
    at once) holds nothing worth keeping, so the corrected command may start afresh in the same place.
    """
    return bool(list_checkpoints(run_dir)) or (Path(run_dir) / "generator.pt").is_file()


def run_exists(run_dir, sync_dir=None) -> bool:
    """A run with results to continue: in `run_dir`, or in its mirror `sync_dir` (after a wiped VM)."""
    return has_results(run_dir) or (sync_dir is not None and has_results(sync_dir))


def is_finished(run_dir, steps: int) -> bool:
    """The run reached `steps` and exported its generator (a shorter finished run can still be extended)."""
    found = list_checkpoints(run_dir)
    return (Path(run_dir) / "generator.pt").is_file() and bool(found) and found[-1][0] == steps


def read_config(run_dir: Path) -> TrainConfig:
    """The run's config; a run made with a model nada no longer ships is refused in one line."""
    from nada_utils.weights.registry import check_not_retired

    try:
        cfg = TrainConfig.from_dict(json.loads((run_dir / "config.json").read_text()))
    except (OSError, json.JSONDecodeError) as e:
        raise NadaError(f"{run_dir / 'config.json'} is unreadable ({type(e).__name__}); the run cannot be resumed") from None
    for name in (cfg.generator, *cfg.clip_models):
        check_not_retired(name, run_dir)
    return cfg


def write_config(run_dir: Path, cfg: TrainConfig) -> None:
    atomic_write_text(run_dir / "config.json", json.dumps(cfg.to_dict(), indent=2) + "\n")


def clear_failed_start(run_dir) -> None:
    """Remove what a start without a checkpoint wrote (config, log lines, first sample grids).

    Left in place, it would be mistaken for the next run's. Only nada's own run files go; anything
    else in the folder stays.
    """
    run_dir = Path(run_dir)
    for name in ("config.json", "log.jsonl", "eval.jsonl"):
        (run_dir / name).unlink(missing_ok=True)
    for p in (run_dir / "samples").glob("step_*.png"):
        p.unlink()
    for sub in ("samples", "checkpoints"):
        with contextlib.suppress(OSError):
            (run_dir / sub).rmdir()  # only when empty (or absent)


def check_resume(saved: TrainConfig, wanted: TrainConfig) -> None:
    """A resume may change only RESUMABLE_FIELDS; the generator and CLIP models above all must stay."""
    for name in ("generator", "clip_models"):
        if getattr(saved, name) != getattr(wanted, name):
            raise NadaError(f"this resume would change {name} from {getattr(saved, name)!r} to {getattr(wanted, name)!r}; "
                            f"start a new run with another --out instead")
    a, b = saved.to_dict(), wanted.to_dict()
    for d in (a, b):  # a ground truth under an earlier name of the same world is the same ground truth
        d["ground_truth"] = canonical_ground_truth(d["ground_truth"])
    # A floor of None is "the automatic one" (trainer.start_floor), which the saved run has already chosen.
    automatic = {"direction_floor"} if b.get("direction_floor") is None else set()
    changed = [k for k in a if k not in RESUMABLE_FIELDS and k != "extras" and k not in automatic and a[k] != b[k]]
    if changed:
        raise NadaError(f"a resume cannot change {', '.join(changed)} (it would not continue the same run); "
                        f"only {', '.join(RESUMABLE_FIELDS)} may change")


def open_run(run_dir, cfg: TrainConfig | None, *, resume: bool, overrides: dict | None = None,
             check: Callable[[TrainConfig], TrainConfig] = lambda cfg: cfg) -> tuple[TrainConfig, Path | None]:
    """Prepare RUN_DIR; return (the config to run, the checkpoint to resume from or None).

    New run: RUN_DIR must not hold another run (it is never overwritten). Resume: the saved config is
    used, with `overrides` (explicit user settings) applied and checked by `check_resume`. `check`
    validates (and may tidy) the config to run before it is written (`checks.check_config`).
    """
    run_dir = Path(run_dir)
    if not resume:
        if has_results(run_dir):
            raise NadaError(f"{run_dir} already holds a run; pass --resume to continue it, or choose another --out")
        if cfg is None:
            raise ValueError("a new run needs a config")
        cfg = check(cfg)
        run_dir.mkdir(parents=True, exist_ok=True)
        clear_failed_start(run_dir)
        write_config(run_dir, cfg)
        return cfg, None
    if not holds_run(run_dir):
        raise NadaError(f"nothing to resume in {run_dir} (no config.json or checkpoints); drop --resume to start a new run")
    saved = read_config(run_dir)
    wanted = {**saved.to_dict(), **(overrides or {})}
    if wanted.get("direction_floor") is None:  # "the automatic floor": the one the saved run has (None or a number)
        wanted["direction_floor"] = saved.direction_floor
    merged = check(TrainConfig.from_dict(wanted))
    check_resume(saved, merged)
    write_config(run_dir, merged)
    return merged, latest_checkpoint(run_dir)


def read_jsonl(path) -> list[dict]:
    """The complete lines of a JSON-lines file (a line cut by a kill is dropped; a missing file is empty)."""
    out = []
    path = Path(path)
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                break
    return out


def read_log(run_dir: Path) -> list[dict]:
    """The run's per-step log, `log.jsonl`."""
    return read_jsonl(Path(run_dir) / "log.jsonl")


def read_evals(run_dir: Path) -> list[dict]:
    """The run's per-checkpoint evaluations, `eval.jsonl` (see `evaluation.py`)."""
    return read_jsonl(Path(run_dir) / "eval.jsonl")


def truncate_log(run_dir: Path, step: int) -> None:
    """Keep the log and evaluation lines of steps <= `step`: steps after the checkpoint are redone on resume."""
    for name in ("log.jsonl", "eval.jsonl"):
        path = Path(run_dir) / name
        if path.is_file() or name == "log.jsonl":
            kept = [r for r in read_jsonl(path) if r.get("step", 0) <= step]
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))


LOCK_NAME = ".lock"


@contextlib.contextmanager
def run_lock(run_dir):
    """Hold RUN_DIR's lock while training into it: a second process that tries is refused.

    The lock is an `flock` on RUN_DIR/.lock, which the kernel drops when its process ends in any way
    (SIGKILL, a wiped Colab VM's last moments), so a lock file left behind never blocks a resume. The
    file holds the owner's pid and host for the message. Where the file system cannot lock (some
    network mounts) or the platform has no `fcntl` (Windows), training goes on unlocked.
    """
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise NadaError(f"{run_dir} is a file, not a run directory; choose another --out")
    created = not run_dir.exists()
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise NadaError(f"cannot create the run directory {run_dir} ({e.strerror}); choose another --out") from None
    path = run_dir / LOCK_NAME
    f = open(path, "a+")
    try:
        import fcntl

        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except ImportError:
        pass
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            f.seek(0)
            owner = f.read().strip() or "another process"
            f.close()
            raise NadaError(f"{run_dir} is being trained by {owner}; wait for that run to finish or stop it, "
                            f"or choose another --out") from None
    f.seek(0)
    f.truncate()
    f.write(f"pid {os.getpid()} on {socket.gethostname()}\n")
    f.flush()
    try:
        yield
    finally:
        if created and [p.name for p in run_dir.iterdir()] == [LOCK_NAME]:
            path.unlink(missing_ok=True)  # a run that failed before writing anything leaves no folder
            run_dir.rmdir()
        f.close()  # closing the file releases the lock


def adapted_generator_path(path_or_run_dir) -> tuple[Path, str | None]:
    """(file to load, the frozen generator's source or None) for a run dir, a checkpoint or generator.pt.

    A run dir gives its `generator.pt`, or its newest checkpoint while training is unfinished.
    """
    path = Path(os.path.expanduser(str(path_or_run_dir)))
    run_dir = path if path.is_dir() else path.parent.parent if path.parent.name == "checkpoints" else path.parent
    frozen = None
    if (run_dir / "config.json").is_file():
        from nada_utils.weights.registry import check_not_retired

        try:
            saved = json.loads((run_dir / "config.json").read_text())
        except (OSError, ValueError):
            saved = {}
        saved = saved if isinstance(saved, dict) else {}
        frozen = saved.get("generator")
        for name in (frozen, *saved.get("clip_models", ())):  # as read_config refuses them
            check_not_retired(name, run_dir)
    if path.is_dir():
        if (path / "generator.pt").is_file():
            return path / "generator.pt", frozen
        ckpt = latest_checkpoint(path)
        if ckpt is None:
            raise NadaError(f"{path} holds no generator.pt and no checkpoint; train first or pass a .pt file")
        return ckpt, frozen
    if not path.is_file():
        raise NadaError(f"checkpoint not found: {path}; pass a run directory, a checkpoint or a generator .pt")
    return path, frozen


def frozen_of(parents, given=None, *, default: str | None = None) -> str:
    """The frozen generator for adapted runs: `given`, else the one their config.json files name, else `default`."""
    if given:
        return str(given)
    parents = {p for p in parents if p}
    if len(parents) == 1:
        return parents.pop()
    if not parents and default:
        return default
    raise NadaError("cannot tell which generator these runs were adapted from "
                    + (f"(they name {sorted(parents)})" if parents else "(no config.json beside them)")
                    + "; name the frozen generator (--generator in the CLI, frozen= in notebooks), e.g. ffhq-1024")
