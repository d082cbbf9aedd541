"""The losses of StyleGAN-NADA, as pure functions over images and CLIP embeddings.

Nothing here loads a model: embeddings come in as tensors, so every loss is testable with
hand-computed values. `clip_guide.ClipGuide` feeds them from real (or tiny) CLIP models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

# The floors on |ΔI| are settings, defined in config.py (which imports nothing it configures).
from nada_utils.adapt.config import DIRECTION_FLOOR, OFFICIAL_FLOOR  # noqa: F401


def directional_loss(emb_frozen: torch.Tensor, emb_train: torch.Tensor, direction: torch.Tensor, *,
                     floor: float = DIRECTION_FLOOR) -> torch.Tensor:
    """Batch mean of `1 - ΔI·ΔT / max(|ΔI|, floor)` with ΔI = n(emb_train) - n(emb_frozen) (n: L2 normalisation).

    Args: emb_frozen, emb_train `[N, D]` CLIP image embeddings of G_frozen(w) and G_train(w);
    direction `[D]` the unit text direction ΔT. Returns a scalar in [0, 2].

    Once |ΔI| exceeds `floor` this is the reference's `1 - cos(ΔI, ΔT)`. Below it the loss is linear
    in ΔI, and why: at step 0 the generators are identical and, with stored noise in both (`--noise
    stored`), ΔI = 0. The gradient of a cosine grows as 1 / |ΔI|, so the first steps' gradients would have an
    arbitrary size (with a floor of 1e-4, about 1,000 times the later ones) that Adam's second moment
    (beta2 0.992) remembers for hundreds of steps, shrinking every later update: training stalled for
    its first hundred steps (docs/BENCHMARKS.md, "How training starts"). A floor of 0.1 (a cosine of
    0.995 between G_train's and G_frozen's embeddings) keeps the gradient of a tiny change about the
    size of a real one's, and its direction (ΔT through CLIP) is the one training should move in.
    """
    delta = F.normalize(emb_train, dim=-1) - F.normalize(emb_frozen, dim=-1)
    cos = (delta * direction.to(delta.dtype)).sum(-1) / delta.norm(dim=-1).clamp_min(floor)
    return (1 - cos).mean()


def global_loss(emb_image: torch.Tensor, text_emb: torch.Tensor) -> torch.Tensor:
    """Batch mean of `1 - cos(E(image), E_text(target))`; emb_image `[N, D]`, text_emb `[D]`."""
    return (1 - F.cosine_similarity(emb_image, text_emb.to(emb_image.dtype).expand_as(emb_image), dim=-1)).mean()


def unit_direction(target: torch.Tensor, source: torch.Tensor) -> torch.Tensor:
    """Unit vector of mean(n(target)) - mean(n(source)) over rows; `[T, D]`, `[S, D]` -> `[D]`.

    With T = S templates this equals the reference's per-template difference averaged, then normalised.
    """
    diff = F.normalize(target, dim=-1).mean(0) - F.normalize(source, dim=-1).mean(0)
    return F.normalize(diff, dim=-1)


def l2_regulariser(img_frozen: torch.Tensor, img_train: torch.Tensor) -> torch.Tensor:
    """Mean squared difference between G_frozen and G_train images (keeps content close)."""
    return F.mse_loss(img_train, img_frozen)
