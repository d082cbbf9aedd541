"""Choosing the torch device from a user's string, with a clear error when it is not there."""

from __future__ import annotations

import torch

from nada_utils.errors import NadaError


def resolve_device(name: str = "auto") -> torch.device:
    """"auto" -> CUDA when available, else CPU; "cpu", "cuda", "cuda:1", "mps" are checked to exist."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise NadaError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise NadaError(f"device {name!r} asked for but CUDA is not available here; use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise NadaError(f"device {name!r} does not exist: this machine has {torch.cuda.device_count()} GPU(s)")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise NadaError("device 'mps' asked for but Apple MPS is not available here; use --device cpu")
    return device


def tune_cpu_allocator() -> bool:
    """Let glibc keep freed memory in the process instead of handing it back to the OS; True if applied.

    A training step frees and reallocates the same large activations every time. glibc serves blocks
    over 32 MB with fresh `mmap`s and returns them on free, so each step pays page faults and zeroing
    for all of them again: about 30% of a 256 px step on a 2-core CPU (docs/BENCHMARKS.md). With mmap
    off and trimming effectively off, freed blocks are reused. The cost: the process keeps its peak
    memory until it exits. Only glibc (Linux) has these switches; elsewhere this does nothing.
    """
    import ctypes
    import sys

    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        m_trim_threshold, m_mmap_max = -1, -4  # from glibc's malloc.h
        return bool(libc.mallopt(m_mmap_max, 0)) and bool(libc.mallopt(m_trim_threshold, 2**31 - 1))
    except (OSError, AttributeError):  # not glibc (e.g. musl)
        return False
