"""Where a notebook's runs and images go, and whether it runs in fast mode.

In Colab, runs live on the VM's disk (`/content/runs`, fast) and are mirrored to Google Drive
(`MyDrive/nada/runs`), so a wiped VM resumes from Drive; saved images go straight to
`MyDrive/nada/results`. Elsewhere they live under the working
directory and need no mirror. `NADA_FAST=1` (set by CI) makes the notebooks use the offline mini
world and short runs; `NADA_WORKDIR` and `NADA_ROOT` move the local folders and the mirror.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


def fast_mode() -> bool:
    """True when `NADA_FAST` is set to anything but "" or "0": mini world, short runs (CI)."""
    return os.environ.get("NADA_FAST", "") not in ("", "0")


@dataclass
class Session:
    """The folders and settings a notebook works with; made by `setup()`."""

    in_colab: bool
    fast: bool
    device: str
    workdir: Path
    mirror: Path | None  # Drive folder (Colab) or $NADA_ROOT that run dirs are mirrored to; None: no mirror

    @property
    def runs(self) -> Path:
        return self.workdir / "runs"

    @property
    def results(self) -> Path:
        # On Drive when there is a mirror: a wiped Colab VM must not take the saved images with it.
        return (self.mirror or self.workdir) / "results"

    @property
    def exports(self) -> Path:
        return (self.mirror or self.workdir) / "exports"

    def run_dir(self, name: str) -> Path:
        return self.runs / name

    def sync_dir(self, name: str) -> Path | None:
        return self.mirror / "runs" / name if self.mirror else None


def setup(*, mount: bool = True) -> Session:
    """Detect Colab, mount Drive there (once), choose the device and the folders; print what was chosen."""
    import torch

    from drive_sync import in_colab, storage_root

    colab = in_colab()
    workdir = Path(os.environ.get("NADA_WORKDIR") or ("/content" if colab else ".")).expanduser().resolve()
    mirror = storage_root() if mount and (colab or os.environ.get("NADA_ROOT")) else None
    device = "cuda" if torch.cuda.is_available() else "cpu"
    session = Session(in_colab=colab, fast=fast_mode(), device=device, workdir=workdir, mirror=mirror)
    gpu = f" ({torch.cuda.get_device_name()})" if device == "cuda" else ""
    print(f"device {device}{gpu}; runs in {session.runs}; images in {session.results}")
    print(f"runs mirrored to {mirror} (a wiped VM resumes from there)" if mirror else "runs are not mirrored (set NADA_ROOT to mirror them)")
    if session.fast:
        print("fast mode (NADA_FAST): the offline mini world, short runs")
    return session
