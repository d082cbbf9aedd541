"""Atomic file writes: a file under its final name is always complete.

Every write goes to a temporary file in the same directory, is flushed and fsynced, and is then
renamed over the final name with `os.replace`, which is atomic on POSIX file systems. A process
killed mid-write leaves at most a stray `*.tmp-*` file, never a truncated checkpoint.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

TMP_MARK = ".tmp-"  # in every temporary name, so leftovers of killed writes can be found and removed


@contextlib.contextmanager
def atomic_path(path):
    """A temporary file's path beside `path`, for writers that need a name rather than an open file
    (FFmpeg's MP4 muxer reopens its output to move the index to the front); on success it is
    fsynced and replaces `path`, on error it is removed."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}{TMP_MARK}")
        os.close(fd)
    except OSError as e:
        # Name the file the caller asked for, not the temporary one beside it.
        raise type(e)(e.errno, e.strerror, str(path)) from None
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def atomic_open(path, mode: str = "wb"):
    """Open a temporary file beside `path`; on success it replaces `path`, on error it is removed."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


def _fsync_dir(directory: Path) -> None:
    # Makes the rename itself durable; not every platform allows opening a directory.
    with contextlib.suppress(OSError):
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def atomic_torch_save(obj, path) -> Path:
    """`torch.save(obj)` to `path` atomically."""
    import torch

    with atomic_open(path, "wb") as f:
        torch.save(obj, f)
    return Path(path)


def atomic_write_text(path, text: str) -> Path:
    """Write text to `path` atomically."""
    with atomic_open(path, "w") as f:
        f.write(text)
    return Path(path)


def copy_atomic(src, dst) -> Path:
    """Copy `src` to `dst` through a temporary file in dst's folder, fsynced, then renamed."""
    import shutil

    with open(src, "rb") as fin, atomic_open(dst, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return Path(dst)
