"""Run `python -m nada_utils ARGS...` and SIGKILL the process at a chosen moment inside a file write.

    python tests/kill_points.py KIND N -- train --preset tiny ...

KIND picks the N-th call (counted from 1, across all threads) of one of the operations every file of
a run goes through, and kills the process in the middle of it:

    save     torch.save: half of the file's bytes written to the temporary file, then killed
    rename   os.replace: the temporary file complete and synced, killed before the rename
    copy     shutil.copyfileobj (Drive pushes, restores): half copied, then killed
    none     no kill (the caller kills from outside after a delay)

The process kills itself with SIGKILL, so no `finally`, atexit or flush runs: what is left on disk is
what a VM that vanishes at that instant leaves. Only this test harness patches anything; the engine
runs unchanged.
"""

import io
import os
import shutil
import signal
import sys
import threading

KINDS = ("save", "rename", "copy", "none")


def _die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class _Tripwire:
    def __init__(self, at: int):
        self.at, self.calls, self.lock = at, 0, threading.Lock()

    def hit(self) -> bool:
        with self.lock:
            self.calls += 1
            return self.calls == self.at


def install(kind: str, at: int) -> None:
    if kind == "none":
        return
    wire = _Tripwire(at)
    if kind == "save":
        import torch

        real_save = torch.save

        def save(obj, f, *args, **kwargs):
            if not wire.hit() or isinstance(f, (str, os.PathLike)):
                return real_save(obj, f, *args, **kwargs)
            buffer = io.BytesIO()
            real_save(obj, buffer, *args, **kwargs)
            data = buffer.getvalue()
            f.write(data[: len(data) // 2])
            f.flush()
            os.fsync(f.fileno())
            _die()

        torch.save = save
    elif kind == "rename":
        real_replace = os.replace

        def replace(src, dst, *args, **kwargs):
            if wire.hit():
                _die()
            return real_replace(src, dst, *args, **kwargs)

        os.replace = replace
    elif kind == "copy":
        real_copy = shutil.copyfileobj

        def copyfileobj(fsrc, fdst, length=0):
            if not wire.hit():
                return real_copy(fsrc, fdst, length)
            data = fsrc.read()
            fdst.write(data[: len(data) // 2])
            fdst.flush()
            _die()

        shutil.copyfileobj = copyfileobj
    else:
        raise SystemExit(f"unknown kind {kind!r}; one of {KINDS}")


if __name__ == "__main__":
    kind, at, sep, *args = sys.argv[1:]
    assert sep == "--", "usage: kill_points.py KIND N -- ARGS..."
    install(kind, int(at))
    from nada_utils.cli import main

    sys.exit(main(args))
