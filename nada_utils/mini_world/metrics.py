"""Ground-truth metrics of the mini world: how far adaptation moved G towards the true target domain.

For held-out z the true target image is known: `render(scene_from_z(z), domain)`. So:
- `gap_closed` = 1 - mean|G_train(z) - target| / mean|G_frozen(z) - target|: the share of the pixel
  gap between the frozen generator and the true target-domain image that adaptation closed
  (0: no change, 1: exact, < 0: moved away);
- `structure`: the correlation between the edge maps of G_train(z) and of the true target image,
  i.e. whether the shapes stayed where the scene puts them (the frozen generator's value is the
  baseline);
- `target_share`: the share of adapted samples the mini CLIP classifies, zero-shot, as the target domain.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nada_utils.mini_world.metrics_v2 import sobel
from nada_utils.mini_world.renderer import DOMAINS, render, scene_from_z
from nada_utils.mini_world.spec import domain_prompt
from nada_utils.models.clip_arch import clip_preprocess
from nada_utils.models.rendering import held_out_z  # held-out latents, never drawn by training


def _edges(images: torch.Tensor) -> torch.Tensor:
    # Reflect-padded: zero padding gave every bright image a frame of edges that matched the true
    # image's frame, so a blank page scored well (issue 18). Figures before that fix were higher.
    gx, gy = sobel(images.mean(1, keepdim=True))
    return torch.sqrt(gx**2 + gy**2 + 1e-12).flatten(1)


def gap_closed(frozen: torch.Tensor, adapted: torch.Tensor, target: torch.Tensor) -> float:
    """1 - mean|adapted - target| / mean|frozen - target| over a batch of `[N, 3, H, W]` images."""
    return 1.0 - (adapted - target).abs().mean().item() / (frozen - target).abs().mean().item()


def structure(images: torch.Tensor, target: torch.Tensor) -> float:
    """Mean Pearson correlation between the Sobel edge maps of `images` and of `target`."""
    a, b = _edges(images), _edges(target)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return (F.cosine_similarity(a, b, dim=1)).mean().item()


@torch.no_grad()
def domain_shares(clip_model, images: torch.Tensor) -> dict[str, float]:
    """Share of images the CLIP classifies zero-shot as each domain (prompts from `spec`)."""
    import clip

    device = images.device
    text = F.normalize(clip_model.encode_text(clip.tokenize([domain_prompt(d) for d in DOMAINS]).to(device)).float(), dim=-1)
    emb = F.normalize(clip_model.encode_image(clip_preprocess(images, int(clip_model.visual.input_resolution))).float(), dim=-1)
    pred = (emb @ text.T).argmax(1)
    return {d: (pred == i).float().mean().item() for i, d in enumerate(DOMAINS)}


@torch.no_grad()
def evaluate(G_frozen, G_train, domain: str, *, n: int = 128, clip_model=None) -> dict:
    """All mini-world metrics for `domain` over `n` held-out z; frozen baselines included."""
    from nada_utils.models.clip_models import load_clip

    device = next(G_train.parameters()).device
    z = held_out_z(n, G_frozen.z_dim).to(device)
    frozen, adapted = G_frozen(z).clamp(-1, 1), G_train(z).clamp(-1, 1)
    target = render(scene_from_z(z), domain, G_frozen.img_resolution).to(device)
    clip_model = clip_model or load_clip("mini-clip", device=device)
    return {
        "domain": domain,
        "n_held_out": n,
        "gap_closed": gap_closed(frozen, adapted, target),
        "l1_frozen_to_target": (frozen - target).abs().mean().item(),
        "l1_adapted_to_target": (adapted - target).abs().mean().item(),
        "structure": structure(adapted, target),
        "structure_frozen": structure(frozen, target),
        "target_share": domain_shares(clip_model, adapted)[domain],
        "target_share_frozen": domain_shares(clip_model, frozen)[domain],
    }
