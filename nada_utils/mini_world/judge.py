"""The mini world's judge: a small CNN that names an image's domain and shape, and that training never sees.

The mini CLIP guides adaptation, so it cannot also score it: a generator trained against a model
finds what that model likes. The judge is trained separately (`python -m
nada_utils.mini_world.recipe.train_judge`) on renders of `world` with augmentations that cover a
generator's blur and noise. Only
`mini_world.metrics` imports this module (`tests/test_layers.py` checks it), so no loss, layer
selection or checkpoint rule of the trainer can depend on it.
"""

from __future__ import annotations

import torch
from torch import nn

from nada_utils.mini_world.world import ALL_DOMAINS, SHAPES

JUDGE = {"width": 32, "resolution": 64}  # the shipped judge's architecture


class Judge(nn.Module):
    """Images `[N, 3, 64, 64]` in [-1, 1] -> (domain logits `[N, len(ALL_DOMAINS)]`, shape logits `[N, 3]`)."""

    def __init__(self, width: int = 32, resolution: int = 64):
        super().__init__()
        self.resolution = resolution
        w = width

        def block(cin, cout, stride):
            return [nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.GroupNorm(8, cout), nn.SiLU()]

        # A strided stem (its 3x3 kernel still sees every pixel: thin lines and stars survive), then
        # three stages down to 4x4. About 32 M multiply-adds per image: cheap to train on a CPU.
        layers = block(3, w, 2) + block(w, 2 * w, 2) + block(2 * w, 2 * w, 1) + block(2 * w, 4 * w, 2) + \
            block(4 * w, 4 * w, 1) + block(4 * w, 4 * w, 2)
        self.features = nn.Sequential(*layers)
        self.domain = nn.Linear(4 * w, len(ALL_DOMAINS))
        self.shape = nn.Linear(4 * w, len(SHAPES))

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if images.shape[-2:] != (self.resolution, self.resolution):
            images = torch.nn.functional.interpolate(images, size=(self.resolution,) * 2, mode="bilinear",
                                                     align_corners=False, antialias=True)
        h = self.features(images).mean((2, 3))
        return self.domain(h), self.shape(h)


def load_judge(name_or_path: str = "mini-judge", device: torch.device | str = "cpu") -> Judge:
    """The judge from the registry (`mini-judge`, bundled) or a path to a file the training script wrote."""
    from pathlib import Path

    from nada_utils.errors import NadaError
    from nada_utils.weights.download import fetch
    from nada_utils.weights.registry import REGISTRY
    from nada_utils.weights.safe_pickle import load_pt

    path = fetch(name_or_path) if name_or_path in REGISTRY else Path(name_or_path)
    if not path.is_file():
        raise NadaError(f"no judge file at {path}; use mini-judge or a file written by "
                        f"python -m nada_utils.mini_world.recipe.train_judge")
    state = load_pt(path)
    try:
        judge = Judge(**state["arch"])
        judge.load_state_dict({k: v.float() for k, v in state["state_dict"].items()})
    except (KeyError, TypeError, RuntimeError, AttributeError) as e:
        first_line = (str(e).splitlines() or [""])[0]
        raise NadaError(f"{path} is not a mini-world judge ({type(e).__name__}: {first_line}); "
                        f"rebuild it with python -m nada_utils.mini_world.recipe.train_judge") from None
    return judge.eval().requires_grad_(False).to(device)


@torch.no_grad()
def judge(model: Judge, images: torch.Tensor, batch: int = 256) -> tuple[list[str], list[str]]:
    """(domain name, shape name) the judge gives each image `[N, 3, H, W]` in [-1, 1]."""
    domains, shapes = [], []
    for chunk in images.split(batch):
        d, s = model(chunk.to(next(model.parameters()).device).float())
        domains += [ALL_DOMAINS[i] for i in d.argmax(1).tolist()]
        shapes += [SHAPES[i] for i in s.argmax(1).tolist()]
    return domains, shapes
