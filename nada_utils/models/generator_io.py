"""Loading and saving generators: registry names, rosinality `.pt`, NVlabs `.pkl` (PyTorch and TF).

Every StyleGAN2 source ends in the same place: a rosinality-layout state dict, an architecture read off
its shapes, and a strict `load_state_dict` into our `Generator`. StyleGAN3 pickles and nada's StyleGAN3
`.pt` files become a `StyleGAN3Generator` instead (`stylegan3_io`). `.pt` files load with
`weights_only=True`; `.pkl` files go through `safe_pickle`, so no file ever runs code.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_torch_save
from nada_utils.models.builtin_models import builtin_generator, is_builtin
from nada_utils.models.state_loading import load_state_strictly
from nada_utils.models.stylegan2 import Generator
from nada_utils.models.stylegan3 import StyleGAN3Generator
from nada_utils.models.stylegan3_io import (
    is_stylegan3_checkpoint,
    stylegan3_checkpoint,
    stylegan3_from_checkpoint,
    stylegan3_from_pickle,
)
from nada_utils.weights import registry
from nada_utils.weights.formats import (
    is_stylegan3_pickle,
    nvlabs_pickle_generator,
    nvlabs_to_rosinality,
    tf_pickle_generator,
    tf_to_rosinality,
)
from nada_utils.weights.safe_pickle import load_pt, restricted_load

FORMAT_VERSION = 1


def arch_from_state_dict(sd: dict[str, torch.Tensor]) -> dict:
    """Generator constructor arguments read off a rosinality state dict's key set and shapes."""
    try:
        n_mlp = len([k for k in sd if re.fullmatch(r"style\.\d+\.weight", k)])
        w_dim = sd["conv1.conv.modulation.weight"].shape[1]
        c_dim = sd["embed.weight"].shape[1] if "embed.weight" in sd else 0
        z_dim = sd["style.1.weight"].shape[1] - (w_dim if c_dim else 0)
        num_blocks = len([k for k in sd if re.fullmatch(r"to_rgbs\.\d+\.conv\.weight", k)])
        channels = {4: sd["input.input"].shape[1]}
        for b in range(num_blocks):
            channels[2 ** (b + 3)] = sd[f"convs.{2 * b}.conv.weight"].shape[1]
    except KeyError as e:
        raise NadaError(f"generator state dict is missing {e.args[0]}; it is not a complete StyleGAN2 generator") from None
    return {"img_resolution": 4 * 2**num_blocks, "w_dim": w_dim, "z_dim": z_dim, "n_mlp": n_mlp,
            "channels": channels, "c_dim": c_dim}


def generator_from_state_dict(sd: dict[str, torch.Tensor], *, w_avg: torch.Tensor | None = None,
                              arch: dict | None = None, source: str = "state dict") -> Generator:
    """Build a Generator whose architecture matches `sd` and load `sd` into it strictly.

    Only the constant blur kernels (derived from the architecture) may be absent. Any other missing
    or unexpected key, or a shape that disagrees, is an error naming `source`.
    """
    arch = dict(arch or arch_from_state_dict(sd))
    arch["channels"] = {int(k): int(v) for k, v in arch["channels"].items()}
    try:
        G = Generator(**arch)
    except (ValueError, TypeError) as e:
        raise NadaError(f"{source}: unsupported generator architecture ({e})") from None
    load_state_strictly(G, sd, source=source, layout="the StyleGAN2 layout", derived=(".blur.kernel", ".upsample.kernel"))
    with torch.no_grad():
        if w_avg is not None:
            if w_avg.numel() != G.w_dim:
                raise NadaError(f"{source}: latent_avg has {w_avg.numel()} values, expected {G.w_dim}")
            G.w_avg.copy_(w_avg.reshape(-1))
            G.w_avg_source = "checkpoint"
        else:
            G.w_avg.copy_(G.estimate_w_avg())
            G.w_avg_source = "estimated from 4096 random z"
    return G.eval().requires_grad_(False)


def _state_from_pt(obj, path: Path):
    """(state dict, w_avg, arch) from the content of a .pt: rosinality dict, bare or NVlabs state dict."""
    if not isinstance(obj, dict):
        raise NadaError(f"{path} holds a {type(obj).__name__}, not a generator checkpoint; expected a rosinality .pt with 'g_ema'")
    arch = None
    if "G_train" in obj:  # a nada training checkpoint: the adapted generator
        sd, w_avg, arch = obj["G_train"], obj.get("latent_avg"), obj.get("arch")
    elif "g_ema" in obj:
        meta = obj.get("nada") if isinstance(obj.get("nada"), dict) else {}
        arch = meta.get("arch")
        sd, w_avg = obj["g_ema"], obj.get("latent_avg")
    else:
        sd, w_avg = obj, None
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise NadaError(f"{path} is not a generator state dict; expected a rosinality .pt with 'g_ema'")
    if "conv1.conv.weight" in sd:
        return sd, w_avg, arch
    if "synthesis.b4.conv1.weight" in sd:
        sd, w_avg = nvlabs_to_rosinality(sd)
        return sd, w_avg, None
    sample = ", ".join(list(sd)[:3]) or "none"
    raise NadaError(f"{path} is not a StyleGAN2 generator (keys like {sample}); expected rosinality keys "
                    f"(conv1.conv.weight) or NVlabs keys (synthesis.b4.conv1.weight)")


def _state_from_pkl(data, path: Path):
    if isinstance(data, tuple):
        sd, w_avg = tf_to_rosinality(tf_pickle_generator(data, path))
        return sd, w_avg, None
    nv_sd, lr_mlp = nvlabs_pickle_generator(data, path)
    sd, w_avg = nvlabs_to_rosinality(nv_sd)
    return sd, w_avg, {**arch_from_state_dict(sd), "lr_mlp": lr_mlp}


def resolve_source(source) -> Path:
    """A local path for a registry name (downloading it if needed) or an existing file path."""
    path = Path(os.path.expanduser(str(source)))
    if path.is_file():
        return path
    registry.check_not_retired(source)
    if str(source) in registry.REGISTRY:
        from nada_utils.weights.download import fetch

        return fetch(str(source))
    if path.exists():
        raise NadaError(f"{path} is a directory, not a checkpoint file")
    if path.suffix or os.sep in str(source):
        raise NadaError(f"checkpoint not found: {path}; check the path, or use a registry name ({', '.join(registry.REGISTRY)})")
    raise NadaError(f"unknown generator {source!r}: not a file and not a registry name ({', '.join(registry.REGISTRY)})")


def load_generator(source, *, device="cpu") -> Generator | StyleGAN3Generator:
    """Load a generator from a registry name, a rosinality `.pt`, an NVlabs `.pkl` or a nada `.pt`.

    `random:tiny` / `random:SIZE` give built-in seeded random generators (no download).
    Returns a frozen generator in eval mode on `device`: a StyleGAN2 `Generator`, or a
    `StyleGAN3Generator` for StyleGAN3 files. `G.w_avg` holds the checkpoint's mean w (estimated from
    random z when the file has none; `G.w_avg_source` says which).
    """
    if is_builtin(source):
        G = builtin_generator(source)
        G.source = source
        return G.to(device)
    path = resolve_source(source)
    G = _generator_from_file(path)
    G.source = str(source)
    return G.to(device)


def _generator_from_file(path: Path) -> Generator | StyleGAN3Generator:
    if path.suffix.lower() == ".pkl":
        data = restricted_load(path)
        if is_stylegan3_pickle(data):
            return stylegan3_from_pickle(data, path)
        sd, w_avg, arch = _state_from_pkl(data, path)
    else:
        obj = load_pt(path)
        if is_stylegan3_checkpoint(obj):
            return stylegan3_from_checkpoint(obj, path)
        sd, w_avg, arch = _state_from_pt(obj, path)
    return generator_from_state_dict(sd, w_avg=w_avg, arch=arch, source=str(path))


def generator_checkpoint(G: Generator | StyleGAN3Generator) -> dict:
    """The checkpoint dict of G. StyleGAN2: rosinality's (`g_ema`, `latent_avg`) plus our architecture metadata;
    StyleGAN3: plain tensors in NVlabs' names plus the architecture (`stylegan3_io.stylegan3_checkpoint`)."""
    if isinstance(G, StyleGAN3Generator):
        return stylegan3_checkpoint(G)
    return {
        "g_ema": {k: v.detach().cpu().clone() for k, v in G.state_dict().items()},
        "latent_avg": G.w_avg.detach().cpu().clone(),
        # Extra key ignored by rosinality tools; keeps settings that shapes cannot show (lr_mlp).
        "nada": {"format_version": FORMAT_VERSION, "arch": G.arch},
    }


def save_generator(G: Generator | StyleGAN3Generator, path) -> Path:
    """Write G as a `.pt` (atomically): rosinality's format for StyleGAN2, which other StyleGAN2 tools load;
    nada's StyleGAN3 format (tensors + architecture, `weights_only` safe) for StyleGAN3."""
    return atomic_torch_save(generator_checkpoint(G), path)
