"""OpenAI's CLIP as an architecture: importing `clip`, its image preprocessing in torch, and CLIPs
with seeded random weights in any published shape.

Loading real weights is `clip_models`' job; this module builds nothing from files, so both the
loader and the random stand-ins (`builtin_models`) can use it.
"""

from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F

# CLIP's image normalisation (the same for every OpenAI model).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


def import_clip():
    """Import `clip`, hiding the pkg_resources deprecation warning its import always triggers."""
    with warnings.catch_warnings():
        # clip 2.6.0 does `from pkg_resources import packaging`; the warning is about clip, not us.
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import clip
    return clip


def clip_preprocess(images: torch.Tensor, resolution: int, *, resize: str = "antialias") -> torch.Tensor:
    """Differentiable CLIP input: `[N, 3, H, W]` in [-1, 1] -> `[N, 3, R, R]` normalised.

    Same steps as CLIP's PIL pipeline, in torch so gradients reach the generator: [-1, 1] -> [0, 1],
    bicubic resize of the short side to R, centre crop, mean/std. `resize="antialias"` antialiases
    when shrinking, as PIL does; "official" does what the official StyleGAN-NADA code gets from CLIP's
    Resize + CenterCrop on tensors with the torchvision it pins: no antialiasing, torchvision's sizes.
    """
    if resize not in ("antialias", "official"):
        raise ValueError(f"resize must be 'antialias' or 'official', got {resize!r}")
    x = (images + 1) / 2
    h, w = x.shape[-2:]
    short, long = min(h, w), max(h, w)
    if resize == "official":  # torchvision Resize(int): the long side is truncated, the crop offset rounded
        big = int(resolution * long / short)
        size = (resolution, big) if h <= w else (big, resolution)
    else:
        scale = resolution / short
        size = (max(resolution, round(h * scale)), max(resolution, round(w * scale)))
    if (h, w) != size:
        x = F.interpolate(x, size=size, mode="bicubic", align_corners=False,
                          antialias=resize == "antialias" and resolution < short)
    if resize == "official":
        top, left = int(round((size[0] - resolution) / 2.0)), int(round((size[1] - resolution) / 2.0))
    else:
        top, left = (size[0] - resolution) // 2, (size[1] - resolution) // 2
    x = x[..., top:top + resolution, left:left + resolution]
    mean = x.new_tensor(CLIP_MEAN).view(1, 3, 1, 1)
    std = x.new_tensor(CLIP_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def make_tiny_clip(*, embed_dim: int = 32, image_resolution: int = 32, vision_width: int = 64,
                   vision_layers: int = 2, vision_patch_size: int = 8, transformer_width: int = 64,
                   transformer_layers: int = 2, seed: int = 0) -> torch.nn.Module:
    """Make a tiny random ViT CLIP (float32, eval, frozen) for tests and smoke runs.

    It keeps CLIP's vocabulary (49408) and context length (77) so `clip.tokenize` output fits, and
    its state dict rebuilds to the same architecture through `clip.model.build_model`. Same seed,
    same weights; the global RNG is left untouched.

    Args:
        embed_dim: size of the joint embedding, the last dim of `encode_image` / `encode_text`.
        image_resolution: input side R; must be a multiple of `vision_patch_size`.
        vision_width, transformer_width: multiples of 64, since build_model infers heads = width // 64.
    """
    for field, width in (("vision_width", vision_width), ("transformer_width", transformer_width)):
        if width <= 0 or width % 64:
            raise ValueError(f"{field}={width} must be a positive multiple of 64 (heads = width // 64)")
    if image_resolution % vision_patch_size:
        raise ValueError(f"image_resolution={image_resolution} must be a multiple of "
                         f"vision_patch_size={vision_patch_size}")
    clip = import_clip()
    # CLIP initialises from the global RNG; seed a forked copy so callers' streams are not shifted.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = clip.model.CLIP(
            embed_dim, image_resolution, vision_layers, vision_width, vision_patch_size,
            context_length=77, vocab_size=49408, transformer_width=transformer_width,
            transformer_heads=transformer_width // 64, transformer_layers=transformer_layers,
        )
    return model.float().eval().requires_grad_(False)
