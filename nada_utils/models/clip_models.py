"""CLIP models: load one by name or from a file, or make a tiny random one for tests.

Every CLIP in the project comes from here as a frozen float32 `clip.model.CLIP` in eval mode, so
callers never deal with fp16 weights, TorchScript graphs or trainable CLIP parameters. The
architecture is always read off the checkpoint's own shapes (`clip.model.build_model`).

The model's encoders take `encode_image([N,3,R,R])` with R = `clip_input_resolution(model)`,
normalised by CLIP's mean/std, and `encode_text([N,77] int64 tokens from clip.tokenize)`; both
return `[N,embed_dim]` unnormalised embeddings.
"""

import os
import zipfile
from pathlib import Path

import torch

from nada_utils.errors import NadaError
from nada_utils.models.builtin_models import builtin_clip, is_builtin
from nada_utils.models.clip_arch import import_clip
from nada_utils.weights.safe_pickle import load_pt, torchscript_tensors

# Keys every CLIP state dict has, ViT or ResNet; build_model reads the text tower's shape from them.
_CLIP_KEYS = ("visual.conv1.weight", "text_projection", "token_embedding.weight",
              "positional_embedding", "ln_final.weight")
# OpenAI's traced archives store these scalars as tensors; they are not parameters of the eager model.
_ARCHIVE_EXTRAS = ("input_resolution", "context_length", "vocab_size")


def _first_line(exc: BaseException) -> str:
    """The first line of an exception's message, short enough to quote inside a NadaError."""
    lines = str(exc).strip().splitlines()
    return (lines[0] if lines else type(exc).__name__)[:200]


def load_clip(name_or_path: str | os.PathLike, *, device: str | torch.device = "cpu") -> torch.nn.Module:
    """Load a frozen float32 CLIP from an OpenAI model name or a checkpoint file.

    Args:
        name_or_path: a name from `clip.available_models()` ("ViT-B/32", "RN50", ...), fetched like
            every registry weight (atomic, checksummed) into `$NADA_CACHE`; or a path to a
            `torch.save`d state dict (bare, or under "state_dict" / "model") or to a TorchScript
            archive such as OpenAI's own `.pt` files, whose tensors are read without running it.
        device: where the returned model lives.

    Returns:
        A `clip.model.CLIP` in eval mode whose parameters have `requires_grad=False`; gradients still
        flow through it to its inputs.

    Raises:
        NadaError: unknown name, missing or unreadable file, a checkpoint that is not CLIP, or a
            failed download.
    """
    if is_builtin(name_or_path):
        return builtin_clip(name_or_path).to(device)
    from nada_utils.weights import registry

    if not Path(str(name_or_path)).is_file():
        registry.check_not_retired(name_or_path)
    if isinstance(name_or_path, str) and registry.REGISTRY.get(name_or_path) and registry.REGISTRY[name_or_path].kind == "clip":
        from nada_utils.weights.download import fetch

        name_or_path = str(fetch(name_or_path))
    clip = import_clip()
    model = _build(clip, _read_state_dict(clip, name_or_path), str(name_or_path))
    # build_model casts weights to fp16; losses and CLIP guidance here are computed in float32.
    model = model.float().eval().requires_grad_(False)
    return model.to(device)


def clip_input_resolution(model: torch.nn.Module) -> int:
    """The side R of the square `[N,3,R,R]` images the model's image encoder expects."""
    return int(model.visual.input_resolution)


def _looks_like_path(text: str) -> bool:
    """Whether a string that is not a model name was meant as a file path (for the error message)."""
    path = Path(text).expanduser()
    return bool(path.suffix) or text.startswith((".", "/", "~")) or (os.sep in text and path.parent.is_dir())


def _read_state_dict(clip, name_or_path: str | os.PathLike) -> dict:
    """Read the tensors of a state-dict file or a TorchScript archive, refusing unsafe pickles."""
    text = str(name_or_path)
    path = Path(name_or_path).expanduser()
    if not path.exists():
        names = ", ".join(clip.available_models())
        if isinstance(name_or_path, str) and not _looks_like_path(text):
            raise NadaError(f"unknown CLIP model {text!r} and no file by that name; use one of {names}, "
                            f"or a path to a CLIP checkpoint")
        raise NadaError(f"CLIP checkpoint {text} does not exist; check the path, or use a model name ({names})")
    if path.is_dir():
        raise NadaError(f"CLIP checkpoint {text} is a directory; pass the .pt file inside it")
    if _is_torchscript(path):
        # Not torch.jit.load: it compiles the archive's code and can run it. Only the tensors are read.
        return torchscript_tensors(path)
    not_torch = (f"{text} is neither a PyTorch state dict nor a TorchScript archive; pass a file written "
                 f"by torch.save(model.state_dict(), path) or an OpenAI CLIP .pt file")
    obj = load_pt(path, not_torch=not_torch)
    if isinstance(obj, dict):
        # Training checkpoints nest the weights under one of these keys.
        nested = next((obj[k] for k in ("state_dict", "model") if isinstance(obj.get(k), dict)), None)
        obj = obj if nested is None else nested
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise NadaError(not_torch)
    return obj


def _is_torchscript(path: Path) -> bool:
    """Whether a file is a TorchScript zip: torch.save zips have no `constants.pkl` and no `code/`."""
    if not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            # Members sit under one top folder named after the archive, e.g. "ViT-B-32/code/...".
            return any(n.endswith("/constants.pkl") or "/code/" in n for n in archive.namelist())
    except Exception:  # noqa: BLE001 - a damaged directory (UnicodeDecodeError, BadZipFile, ...): not an archive we read
        return False


def _build(clip, state_dict: dict, shown: str) -> torch.nn.Module:
    """Build a float32 CLIP whose architecture is read off the state dict's shapes."""
    missing = [k for k in _CLIP_KEYS if k not in state_dict]
    if missing:
        raise NadaError(f"{shown} is not a CLIP checkpoint (it has no {', '.join(missing)}); pass an "
                        f"OpenAI CLIP .pt file or a state dict of clip.model.CLIP")
    weights = {k: v for k, v in state_dict.items() if k not in _ARCHIVE_EXTRAS}
    try:
        # build_model deletes keys from the dict it is given, so it gets a copy.
        model = clip.model.build_model(dict(weights)).float()
        # build_model loads into fp16 parameters, which rounds float32 weights; load them again exactly.
        model.load_state_dict(weights)
    except (KeyError, RuntimeError, AssertionError, ValueError, IndexError) as exc:
        raise NadaError(f"{shown} is not a CLIP checkpoint that clip.model.build_model can rebuild "
                        f"({type(exc).__name__}: {_first_line(exc)}); pass an unmodified CLIP checkpoint") from exc
    return model
