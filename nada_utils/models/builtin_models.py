"""Built-in models with seeded random weights: `random:tiny`, `random:SIZE` and `random:sg3-t-SIZE`.

They need no download and go through the same `load_generator` / `load_clip` path as real weights.
`random:tiny` (a 32 px generator and a tiny CLIP) runs the whole pipeline in seconds on a CPU;
`random:256` ... `random:1024` are config-f generators of the real sizes, and `random:ViT-B/32` ...
the real CLIP architectures, for benchmarks. `random:sg3-t-SIZE` / `random:sg3-r-SIZE` (and
`random:sg3-t-tiny`) are StyleGAN3 generators of configs T and R (NVlabs' train.py settings).
They show the mechanics only: random weights make no meaningful images.
"""

from __future__ import annotations

import torch

from nada_utils.errors import NadaError
from nada_utils.models.clip_arch import make_tiny_clip
from nada_utils.models.stylegan2 import Generator, default_channels
from nada_utils.models.stylegan3 import CONFIGS as SG3_CONFIGS
from nada_utils.models.stylegan3 import StyleGAN3Generator

PREFIX = "random:"
TINY_GENERATOR = dict(img_resolution=32, channel_multiplier=2, channel_max=32, n_mlp=2, w_dim=64, seed=0)
# A StyleGAN3 small enough for tests: 16 px, 4 layers, 16 channels.
TINY_SG3 = dict(img_resolution=16, z_dim=32, w_dim=32, channel_base=256, channel_max=16, num_layers=4)
TINY_CLIP = dict(embed_dim=32, image_resolution=32, vision_width=64, vision_layers=2, vision_patch_size=8,
                 transformer_width=64, transformer_layers=2, seed=0)
# OpenAI's ViT architectures (from their published shapes), for benchmarks at the real cost.
REAL_CLIPS = {
    "ViT-B/32": dict(embed_dim=512, image_resolution=224, vision_width=768, vision_layers=12, vision_patch_size=32,
                     transformer_width=512, transformer_layers=12),
    "ViT-B/16": dict(embed_dim=512, image_resolution=224, vision_width=768, vision_layers=12, vision_patch_size=16,
                     transformer_width=512, transformer_layers=12),
    "ViT-L/14": dict(embed_dim=768, image_resolution=224, vision_width=1024, vision_layers=24, vision_patch_size=14,
                     transformer_width=768, transformer_layers=12),
}


def is_builtin(name) -> bool:
    return isinstance(name, str) and name.startswith(PREFIX)


def builtin_generator(name: str):
    """`random:tiny` or `random:SIZE` (SIZE a power of two, 32-1024, config-f channels)."""
    kind = name[len(PREFIX):]
    if kind == "tiny":
        return random_generator(**TINY_GENERATOR)
    if kind.isdigit() and int(kind) in (32, 64, 128, 256, 512, 1024):
        return random_generator(int(kind))
    arch, _, size = kind.rpartition("-")
    if arch in ("sg3-t", "sg3-r") and (size == "tiny" or size.isdigit() and int(size) in (32, 64, 128, 256, 512, 1024)):
        config = arch[-1].upper()
        return random_stylegan3(config, **TINY_SG3) if size == "tiny" else random_stylegan3(config, int(size))
    raise NadaError(f"unknown built-in generator {name!r}; use random:tiny, random:SIZE with SIZE 32..1024, "
                    f"or random:sg3-t-SIZE / random:sg3-r-SIZE (StyleGAN3, SIZE 32..1024 or tiny)")


def builtin_clip(name: str):
    """`random:tiny` (32 px input, 32-dim embeddings) or `random:ViT-B/32` etc. (the real architecture)."""
    kind = name[len(PREFIX):]
    if kind == "tiny":
        return make_tiny_clip(**TINY_CLIP)
    if kind in REAL_CLIPS:
        return make_tiny_clip(**REAL_CLIPS[kind], seed=0)
    raise NadaError(f"unknown built-in CLIP {name!r}; use random:tiny or random:MODEL with MODEL one of {', '.join(REAL_CLIPS)}")


def _seeded(build, seed: int):
    """The generator `build()` makes under `seed` (the caller's RNG untouched), its w_avg estimated, frozen."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = build()
        G.w_avg.copy_(G.estimate_w_avg(1024))
    G.w_avg_source = "estimated from 1024 random z"
    return G.eval().requires_grad_(False)


def random_generator(img_resolution: int, *, channel_multiplier: int = 2, channel_max: int = 512, n_mlp: int = 8,
                     w_dim: int = 512, seed: int = 0) -> Generator:
    """A generator with seeded random weights, for benchmarks and smoke tests of any size."""
    return _seeded(lambda: Generator(img_resolution, w_dim=w_dim, n_mlp=n_mlp,
                                     channels=default_channels(img_resolution, channel_multiplier, channel_max)), seed)


def random_stylegan3(config: str, img_resolution: int, *, seed: int = 0, **overrides) -> StyleGAN3Generator:
    """A StyleGAN3 generator of config "T" or "R" with seeded random weights (w_avg estimated from 1024 z)."""
    arch = {**SG3_CONFIGS[config], **overrides}
    return _seeded(lambda: StyleGAN3Generator(img_resolution=img_resolution, **arch), seed)
