"""Weights on Google Drive: download them with gdown, or point the cache at your own Drive copy.

Registry files hosted on Drive often hit "quota exceeded" or "too many users". The way out is to copy
the file into your own Drive (Drive's "Make a copy") and point nada at that copy: `use_local_copy`
checks it against the registry (size and sha256) and links it into the cache under its registry name.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from nada_utils.errors import NadaError
from nada_utils.weights import registry
from nada_utils.weights.download import fetch, human_size, sha256_file, write_sidecar


def download_weights(name: str, *, quiet: bool = False) -> Path:
    """Fetch a registry file (Google Drive ids through gdown), checksum-verified; see `nada_utils.weights.download.fetch`."""
    return fetch(name, quiet=quiet)


def use_local_copy(name: str, path) -> Path:
    """Make registry name `name` use the file at `path` (e.g. your Drive copy) after checking it.

    The cache entry becomes a symbolic link to `path` (a copy where links are not allowed), so the
    file is not duplicated on the VM's small disk. Returns the cache path.
    """
    spec = registry.get_spec(name)
    src = Path(os.path.expanduser(str(path)))
    if not src.is_file():
        raise NadaError(f"{src} does not exist; copy {spec.filename} into your Drive and give its path")
    size = src.stat().st_size
    if spec.size is not None and size != spec.size:
        raise NadaError(f"{src} has {human_size(size)}, but {name} is {human_size(spec.size)}; it is another or a partial file")
    if spec.sha256 is not None and sha256_file(src) != spec.sha256:
        raise NadaError(f"{src} does not match the checksum of {name}; it is another or a damaged file")
    dest = registry.local_path(name)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.link-{os.getpid()}")
    try:
        tmp.symlink_to(src.resolve())
    except OSError:
        shutil.copyfile(src, tmp)
    os.replace(tmp, dest)
    if spec.sha256 is not None:
        write_sidecar(dest, spec.sha256)  # verified above; `fetch` will not hash it again
    return dest
