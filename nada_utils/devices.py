"""Choosing the torch device from a user's string, with a clear error when it is not there."""

from __future__ import annotations

import torch

from .errors import NadaError


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
