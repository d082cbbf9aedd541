"""Colab detection, Google Drive mounting and where runs are stored.

`google.colab` is imported only inside these functions: it exists only in Colab, and importing
nada must work everywhere.
"""

from __future__ import annotations

import os
from pathlib import Path

COLAB_MOUNTPOINT = "/content/drive"


def in_colab() -> bool:
    """Whether this Python runs inside Google Colab."""
    try:
        import google.colab  # noqa: F401
    except ImportError:
        return False
    return True


def mount(mountpoint: str = COLAB_MOUNTPOINT) -> Path | None:
    """Mount Google Drive in Colab (once; later calls do nothing) and return `MyDrive`; None outside Colab."""
    if not in_colab():
        return None
    my_drive = Path(mountpoint) / "MyDrive"
    if not my_drive.is_dir():  # Colab's drive.mount creates MyDrive; its presence means mounted
        from google.colab import drive

        drive.mount(mountpoint)
    return my_drive


def storage_root(mountpoint: str = COLAB_MOUNTPOINT) -> Path:
    """Where runs live: `$NADA_ROOT`, else `MyDrive/nada` on Drive in Colab (mounting it), else `~/nada_runs`."""
    if os.environ.get("NADA_ROOT"):
        return Path(os.environ["NADA_ROOT"]).expanduser()
    my_drive = mount(mountpoint)
    if my_drive is not None:
        return my_drive / "nada"
    return Path("~/nada_runs").expanduser()
