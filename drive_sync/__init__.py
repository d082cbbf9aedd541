"""Google Drive support for Colab: mounting, where runs live, run mirrors and weights on Drive.

A Colab VM can be wiped at any time. Training with a sync dir on Drive (`python -m nada_utils train
--sync-dir DIR`, or `with mirrored(run_dir, sync_dir, resume=...) as on_save: train(..., on_save=on_save)`)
copies every finished file there, and `--resume` continues from it even when the local run dir is gone.
This package depends on the library (it reads run dirs' layout); the library never imports it: the CLI
and the notebooks attach the mirror through the trainer's `on_save`.
"""

from .colab import in_colab, mount, storage_root
from .mirror import RunMirror, copy_atomic, mirrored, restore_run
from .weights import download_weights, use_local_copy

__all__ = ["RunMirror", "copy_atomic", "download_weights", "in_colab", "mirrored", "mount", "restore_run", "storage_root", "use_local_copy"]
