"""The losses of StyleGAN-NADA, as pure functions over images and CLIP embeddings.

Nothing here loads a model: embeddings come in as tensors, so every loss is testable with
hand-computed values. `clip_guide.ClipGuide` feeds them from real (or tiny) CLIP models.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def directional_loss(emb_frozen: torch.Tensor, emb_train: torch.Tensor, direction: torch.Tensor, *, eps: float = 1e-4) -> torch.Tensor:
    """Batch mean of `1 - cos(ΔI, ΔT)` with ΔI = n(emb_train) - n(emb_frozen) (n: L2 normalisation).

    Args: emb_frozen, emb_train `[N, D]` CLIP image embeddings of G_frozen(w) and G_train(w);
    direction `[D]` the unit text direction ΔT. Returns a scalar in [0, 2].

    At step 0 the generators are identical and ΔI = 0. The norm of ΔI is clamped at `eps` instead of
    dividing by zero, so the loss is exactly 1 there and its gradient is finite and points
    emb_train along ΔT, which is the direction training should move in.
    """
    delta = F.normalize(emb_train, dim=-1) - F.normalize(emb_frozen, dim=-1)
    cos = (delta * direction.to(delta.dtype)).sum(-1) / delta.norm(dim=-1).clamp_min(eps)
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
