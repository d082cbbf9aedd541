"""Training checkpoints: complete, atomic, plain types only, loadable with `weights_only=True`.

A checkpoint holds everything a resume needs to continue bit for bit: G_train's weights, the
optimiser state, the number of finished steps, every RNG state the run uses, the config, the text
directions and the currently selected layers. Files are `RUN_DIR/checkpoints/step_NNNNNN.pt`,
written through a temporary file and a rename, so a name that exists is a complete file.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_torch_save
from nada_utils.weights.safe_pickle import load_pt

FORMAT_VERSION = 1
_NAME = re.compile(r"step_(\d{6,})\.pt")


def checkpoint_dir(run_dir) -> Path:
    return Path(run_dir) / "checkpoints"


def list_checkpoints(run_dir) -> list[tuple[int, Path]]:
    """(step, path) of the run's checkpoints, oldest first; temporary files are ignored."""
    found = []
    d = checkpoint_dir(run_dir)
    if d.is_dir():
        for p in d.iterdir():
            m = _NAME.fullmatch(p.name)
            if m:
                found.append((int(m.group(1)), p))
    return sorted(found)


def latest_checkpoint(run_dir) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(run_dir, state: dict, *, keep: int, protect=()) -> Path:
    """Write `state` (with its `step`) atomically, then delete all but the newest `keep` checkpoints.

    Steps in `protect` (the best checkpoint so far) are never deleted.
    """
    state = dict(state, format_version=FORMAT_VERSION)
    path = atomic_torch_save(state, checkpoint_dir(run_dir) / f"step_{int(state['step']):06d}.pt")
    for step, old in list_checkpoints(run_dir)[:-keep]:
        if step not in protect:
            old.unlink(missing_ok=True)
    return path


def rng_state(sampler: torch.Generator) -> dict:
    """Every RNG the trainer uses: its latent sampler, torch's CPU RNG and each CUDA device's."""
    state = {"sampler": sampler.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, sampler: torch.Generator) -> None:
    sampler.set_state(state["sampler"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_checkpoint(path) -> dict:
    """Read a training checkpoint (never executing code) and check its format version."""
    # nada writes checkpoints atomically, so a damaged one was hurt afterwards (a disk, a partial copy).
    state = load_pt(path, not_torch=f"{path} is damaged (truncated or not a PyTorch file); delete it, and a "
                                    f"resume continues from the checkpoint before it")
    if not isinstance(state, dict) or "G_train" not in state or "step" not in state:
        raise NadaError(f"{path} is not a nada training checkpoint (no G_train/step inside)")
    version = state.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise NadaError(f"{path} was written by a newer nada (checkpoint format {version}); upgrade nada to read it")
    # Older versions would be upgraded here, one step at a time; version 1 is the first.
    return state
