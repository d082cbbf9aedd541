"""Settings for the notebook kernels that pytest starts (`pytest --nbval-lax`): fast mode, the checkout
importable, and every file the notebooks write in a temporary folder instead of the checkout.

nbval starts each kernel in the notebook's folder with this process's environment, so environment
variables set here are what the notebooks see. The folder is removed when pytest ends.
"""

import os
import shutil
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent
_scratch: Path | None = None


def pytest_configure(config):
    global _scratch
    _scratch = Path(tempfile.mkdtemp(prefix="nada-notebooks-"))
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))
    os.environ.setdefault("NADA_FAST", "1")
    os.environ.setdefault("NADA_WORKDIR", str(_scratch / "work"))
    os.environ.setdefault("NADA_ROOT", str(_scratch / "drive"))  # exercises the Drive mirror path
    os.environ.setdefault("NADA_CACHE", str(_scratch / "cache"))
    os.environ.setdefault("MPLBACKEND", "Agg")


def pytest_unconfigure(config):
    if _scratch is not None:
        shutil.rmtree(_scratch, ignore_errors=True)
