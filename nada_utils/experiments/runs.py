"""Many independent training runs, each in its own run dir: trained here or by a pool of processes.

A study (layer specs x seeds) or an ablation (settings x seeds) is a list of `PlannedRun`s. `execute`
trains every one that is not finished: in this process, or with `jobs > 1` in that many worker
processes of `threads` torch threads each (two runs of one thread each use a 2-core machine fully,
where one run would leave a core idle: the mini models are too small to spread over two). A finished
run is reused and an interrupted one resumed (the trainer's exact resume), so a plan spans sittings.
Results are read back from the run dirs, never from the workers, so a plan can be gathered at any time.
Runs with a `sync_dir` are mirrored by `mirror` (`drive_sync.mirrored`, passed in by the notebook or
CLI: the library never imports drive_sync).
"""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from nada_utils.adapt.config import TrainConfig
from nada_utils.adapt.run_dir import check_resume, has_results, is_finished, read_config, run_exists
from nada_utils.errors import NadaError


@dataclass(frozen=True)
class PlannedRun:
    """One run of a plan: where it goes, what it trains, and its labels in the tables (spec, seed, ...)."""

    run_dir: Path
    cfg: TrainConfig
    labels: dict = field(default_factory=dict)
    sync_dir: Path | None = None  # its mirror (Drive), if the plan has one

    @property
    def name(self) -> str:
        return ", ".join(f"{k} {v}" for k, v in self.labels.items()) or str(self.run_dir)


def check_plan(runs: list[PlannedRun]) -> None:
    """Refuse a plan whose run dirs repeat, or hold a run of another config (choose another root)."""
    seen: dict[Path, str] = {}
    for r in runs:
        key = Path(r.run_dir).resolve()
        if key in seen:
            raise NadaError(f"{r.run_dir} is planned twice ({seen[key]} and {r.name}); give each run its own folder")
        seen[key] = r.name
        if has_results(r.run_dir):  # also before reusing a finished run: it must be this config's
            check_resume(read_config(Path(r.run_dir)), r.cfg)


def pending(runs: list[PlannedRun]) -> list[PlannedRun]:
    """The runs that have not reached their steps yet."""
    return [r for r in runs if not is_finished(r.run_dir, r.cfg.steps)]


def _train_one(run_dir: str, cfg: dict, sync_dir: str | None, threads: int | None, progress: bool,
               mirror: Callable | None = None) -> float:
    """Train (or resume) one run; the body of a worker process, and of `execute` in this process."""
    import torch

    from nada_utils.adapt.trainer import train

    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    t0 = time.time()
    log = (lambda _: None) if not progress else None
    resume = run_exists(run_dir, sync_dir)
    mirroring = mirror(run_dir, sync_dir, resume=resume, log=log or print) \
        if mirror is not None and sync_dir is not None else contextlib.nullcontext()
    try:
        with mirroring as on_save:
            train(TrainConfig.from_dict(cfg), run_dir, resume=resume, progress=progress, log=log, on_save=on_save)
    finally:
        torch.set_num_threads(before)  # in this process, the caller's setting comes back
    return time.time() - t0


def execute(runs: list[PlannedRun], *, jobs: int = 1, threads: int | None = None, progress: bool = True,
            log: Callable[[str], None] = print, mirror: Callable | None = None) -> None:
    """Train every unfinished run of `runs` (checked with `check_plan` first).

    `jobs`: runs at once (1: in this process, with a progress bar; more: worker processes, a line per
    run). `threads`: torch threads of each run (None: torch's default in this process; 1 in workers).
    Every run is attempted; the ones that failed are named in one error at the end. `mirror`: mirrors
    the runs that have a sync_dir (`drive_sync.mirrored`; a module-level function, so workers can take it).
    """
    if jobs < 1:
        raise NadaError(f"--jobs must be >= 1, got {jobs}")
    if threads is not None and threads < 1:
        raise NadaError(f"--threads must be >= 1, got {threads}")
    if mirror is None and any(r.sync_dir is not None for r in runs):
        raise ValueError("the plan has sync dirs: pass mirror=drive_sync.mirrored to copy the runs there")
    check_plan(runs)
    todo = pending(runs)
    done = len(runs) - len(todo)
    if done:
        log(f"{done} of {len(runs)} run(s) already finished: reused")
    failed: list[str] = []
    durations: list[float] = []

    def finished(r: PlannedRun, seconds: float | None, error: BaseException | None) -> None:
        nonlocal done
        done += 1
        if error is not None:
            failed.append(f"{r.name} ({r.run_dir}): {error}")
        else:
            durations.append(seconds)
        left = len(runs) - done
        # The runs left, `jobs` at a time, each as long as the mean so far (the ones running have begun).
        eta = (sum(durations) / len(durations) if durations else 0.0) * -(-left // jobs)
        status = f"failed: {error}" if error is not None else f"{seconds:.0f} s"
        log(f"[{done}/{len(runs)}] {r.name}: {status}" + (f"; about {eta / 60:.0f} min left" if left and eta else ""))

    args = [(str(r.run_dir), r.cfg.to_dict(), None if r.sync_dir is None else str(r.sync_dir)) for r in todo]
    if jobs == 1:
        for r, a in zip(todo, args):
            log(f"training {r.name} in {r.run_dir}" + (" (resuming)" if run_exists(r.run_dir, r.sync_dir) else ""))
            try:
                seconds, error = _train_one(*a, threads, progress, mirror), None
            except NadaError as e:
                seconds, error = None, e
            finished(r, seconds, error)
    elif todo:
        import multiprocessing

        # spawn, not fork: a forked copy of a process that already ran torch threads can deadlock.
        with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
            futures = {pool.submit(_train_one, *a, threads or 1, False, mirror): r for r, a in zip(todo, args)}
            for future in as_completed(futures):
                error = future.exception()
                finished(futures[future], None if error else future.result(), error)
    if failed:
        raise NadaError(f"{len(failed)} of {len(runs)} run(s) failed; the others are kept, and the same command "
                        "retries the failed ones: " + "; ".join(failed))
