"""A mirror of a run directory (on Google Drive, or any folder) that a wiped VM can resume from.

Every file the trainer finishes (config, samples, log, checkpoints, generator.pt) is copied to the
mirror by a background thread, so training never waits on Drive. Each copy goes to a temporary name
beside its target and is renamed when complete: a name in the mirror is always a whole file, even
if the VM dies mid-copy. Failed copies are retried; a copy that still fails is logged (once per kind
of failure) and dropped, never raised into training.
"""

from __future__ import annotations

import contextlib
import errno
import json
import queue
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

from nada_utils.adapt.checkpoint import list_checkpoints
from nada_utils.adapt.run_dir import LOCK_NAME, has_results
from nada_utils.errors import NadaError
from nada_utils.fileio import TMP_MARK as _TMP_MARK
from nada_utils.fileio import copy_atomic


def _failure_kind(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the sync dir is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.ENOTDIR, errno.EEXIST):
        return "the sync dir is not writable"
    return f"copying failed ({type(exc).__name__}: {exc.strerror or exc})"


class RunMirror:
    """Background copier of a run dir's finished files to `sync_dir`.

    Args:
        run_dir: the local run directory.
        sync_dir: the mirror folder (e.g. on the mounted Drive).
        keep: checkpoints kept in the mirror (the newest), as locally (None: the run's config.json says).
        retries, backoff: attempts per file and the first wait between them (doubling).
        log: where warnings go (one per kind of failure).
    """

    def __init__(self, run_dir, sync_dir, *, keep: int | None = None, retries: int = 3, backoff: float = 1.0,
                 log: Callable[[str], None] = print):
        self.run_dir, self.sync_dir = Path(run_dir), Path(sync_dir)
        self.keep, self.retries, self.backoff, self.log = keep, retries, backoff, log
        self.warned: set[str] = set()
        self.pushed: list[Path] = []
        self._queue: queue.Queue = queue.Queue()
        self._remove_stray_temporaries()
        self._catch_up()
        self._thread = threading.Thread(target=self._work, name="nada-mirror", daemon=True)
        self._thread.start()

    def push(self, path) -> None:
        """Queue a finished file of the run for copying; returns at once."""
        self._queue.put(Path(path))

    def close(self, timeout: float = 600.0) -> None:
        """Wait (at most `timeout` s) until every queued file is copied or given up, then stop the worker."""
        self._queue.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self.log(f"warning: the mirror {self.sync_dir} is still copying after {timeout:g} s; "
                     f"the local run dir {self.run_dir} is complete, copy what is missing by hand")

    def _remove_stray_temporaries(self) -> None:
        # Temporaries of copies cut short by a killed VM; they never carry a final name.
        if self.sync_dir.is_dir():
            for p in self.sync_dir.rglob(f"*{_TMP_MARK}*"):
                try:
                    p.unlink()
                except OSError:
                    pass

    def _catch_up(self) -> None:
        # Files a killed process wrote but never pushed (a checkpoint saved just before the kill, say):
        # queued again, so the mirror converges on the run dir instead of missing them for good.
        for src in files_in_copy_order(self.run_dir):
            dst = self.sync_dir / src.relative_to(self.run_dir)
            try:
                if not dst.is_file() or dst.stat().st_size != src.stat().st_size:
                    self.push(src)
            except OSError:
                self.push(src)  # the copy reports what is wrong with the sync dir, once

    def _work(self) -> None:
        while True:
            path = self._queue.get()
            if path is None:
                return
            self._copy_with_retries(path)

    def _copy_with_retries(self, src: Path) -> None:
        rel = src.relative_to(self.run_dir)
        wait = self.backoff
        for attempt in range(self.retries):
            if not src.exists():
                return  # superseded: pruned locally before its turn came (a newer checkpoint exists)
            try:
                copy_atomic(src, self.sync_dir / rel)
                self.pushed.append(rel)
                if rel.parts[0] == "checkpoints":
                    self._prune()
                return
            except OSError as exc:
                kind = _failure_kind(exc)
                if attempt == self.retries - 1:
                    if kind not in self.warned:
                        self.warned.add(kind)
                        self.log(f"warning: could not mirror {rel} to {self.sync_dir}: {kind}; "
                                 f"training goes on, the local run dir {self.run_dir} is complete")
                    return
                time.sleep(wait)
                wait *= 2

    def _prune(self) -> None:
        # Old checkpoints go when the run dir dropped them too: the trainer keeps the best one.
        keep = self.keep
        if keep is None:  # config.json is the run's first file: a checkpoint is never mirrored before it
            keep = json.loads((self.run_dir / "config.json").read_text())["keep"]
        for _, old in list_checkpoints(self.sync_dir)[:-keep]:
            if not (self.run_dir / old.relative_to(self.sync_dir)).exists():
                try:
                    old.unlink()
                except OSError:
                    pass


def files_in_copy_order(folder: Path) -> list[Path]:
    """A run's finished files (no temporaries, no lock), checkpoints last and oldest first.

    Which copy of a run is newer is judged by its newest checkpoint. Copied last, a checkpoint never
    arrives before the log lines and samples that go with it, so a copy cut short by a kill never
    looks finished, and the next start copies again.
    """
    checkpoints = [path for _, path in list_checkpoints(folder)]
    others = [p for p in sorted(folder.rglob("*")) if p.is_file() and _TMP_MARK not in p.name
              and p.name != LOCK_NAME and p not in checkpoints]
    return others + checkpoints


def latest_step(run_dir: Path) -> int:
    found = list_checkpoints(run_dir)
    return found[-1][0] if found else -1


def restore_run(sync_dir, run_dir, *, log: Callable[[str], None] = print) -> bool:
    """Copy a run back from its mirror when the local copy is missing or older. Returns whether it did.

    "Older" means the mirror has a newer checkpoint, or a config where the local dir has none.
    """
    sync_dir, run_dir = Path(sync_dir), Path(run_dir)
    if not (sync_dir / "config.json").is_file():
        return False
    local_missing = not (run_dir / "config.json").is_file()
    if not local_missing and latest_step(run_dir) >= latest_step(sync_dir):
        return False
    for src in files_in_copy_order(sync_dir):
        copy_atomic(src, run_dir / src.relative_to(sync_dir))
    log(f"restored {run_dir} from the mirror {sync_dir} (checkpoint step {latest_step(run_dir)})")
    return True


@contextlib.contextmanager
def mirrored(run_dir, sync_dir, *, resume: bool, retries: int = 3, backoff: float = 1.0,
             log: Callable[[str], None] = print) -> Iterator[Callable[[Path], None] | None]:
    """Mirror a run while it trains: yields the trainer's `on_save` (None without a sync dir).

        with mirrored(run_dir, sync_dir, resume=resume) as on_save:
            train(cfg, run_dir, resume=resume, on_save=on_save)

    Before: a resume restores the run from the mirror when the local copy is missing or older; a new
    run refuses a mirror of another run. After: waits until every finished file is copied.
    """
    if sync_dir is None:
        yield None
        return
    if Path(sync_dir).exists() and not Path(sync_dir).is_dir():
        raise NadaError(f"sync dir {sync_dir} is a file; give a folder (e.g. on the mounted Drive) for the mirror")
    if resume:
        restore_run(sync_dir, run_dir, log=log)
    else:
        check_new_mirror(sync_dir)
    mirror = None
    try:
        # Started on the first file: a run refused before writing anything leaves no mirror folder behind.
        def push(path: Path) -> None:
            nonlocal mirror
            if mirror is None:
                mirror = RunMirror(run_dir, sync_dir, retries=retries, backoff=backoff, log=log)
            mirror.push(path)

        yield push
    finally:
        if mirror is not None:
            mirror.close()


def check_new_mirror(sync_dir) -> None:
    """A new run must not write into a mirror of another run (one with results; see run_dir.has_results)."""
    if has_results(sync_dir):
        raise NadaError(f"sync dir {sync_dir} already mirrors a run; pass --resume to continue it, or choose another --sync-dir")
