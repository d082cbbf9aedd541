"""Google Drive support for Colab: mounting, where runs live, run mirrors and weights on Drive.

A Colab VM can be wiped at any time. Training with a sync dir on Drive (`train(..., sync_dir=...)`,
or `python -m nada_utils train --sync-dir DIR`) copies every finished file there, and
`--resume` continues from it even when the local run dir is gone.
"""

from .colab import in_colab, mount, storage_root
from .mirror import RunMirror, copy_atomic, restore_run
from .weights import download_weights, use_local_copy

__all__ = ["RunMirror", "copy_atomic", "download_weights", "in_colab", "mount", "restore_run", "storage_root", "use_local_copy"]
