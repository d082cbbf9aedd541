"""Text-guided latent editing (StyleCLIP's optimisation method): move one w+ towards a text.

The generator stays fixed; only the latent moves. Loss = `1 - cos(CLIP(G(w)), CLIP(text))`, plus
`l2_weight * |w - w_start|^2` so the image stays the same picture, plus, when the IR-SE50 weights are
present and the image is a face, `identity_weight * (1 - cos)` between ArcFace features of the edited
and the starting image. StyleCLIP's defaults: Adam, lr 0.1 with a short warm-up and cosine ramp-down,
l2 0.008, identity 0.005. The text is used as written (no prompt templates), so write a description
("a face with blue hair", "a photo of a blue circle").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch

from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.errors import NadaError


@dataclass
class Edit:
    """The edited latent `ws` `[1, num_ws, w_dim]`, with CLIP similarity to the text before and after."""

    ws: torch.Tensor
    similarity_before: float
    similarity_after: float
    l2: float  # |ws - ws_start|^2, summed
    losses: list[float] = field(default_factory=list)


def edit_latent(G, ws: torch.Tensor, text: str, guide: ClipGuide, *, steps: int = 100, lr: float = 0.1,
                l2_weight: float = 0.008, identity=None, identity_weight: float = 0.005,
                noise: list[torch.Tensor] | None = None, log: Callable[[str], None] | None = None) -> Edit:
    """Optimise `ws` (from `invert`) so that `G.synthesis(ws)` matches `text`; G is not modified."""
    text = (text or "").strip()
    if not text:
        raise NadaError("the edit text is empty; describe the result, e.g. --text 'a face with blue hair'")
    if steps < 1 or lr <= 0 or l2_weight < 0 or identity_weight < 0:
        raise NadaError(f"edit needs steps >= 1, lr > 0 and weights >= 0 (got steps={steps}, lr={lr}, "
                        f"l2={l2_weight}, identity={identity_weight})")
    device = next(G.parameters()).device
    start = ws.detach().to(device).float()
    noise = None if noise is None else [n.to(device) for n in noise]
    targets = guide.text_targets(text, templates=False)

    def similarity(images):  # the weighted mean cosine to the text: 1 - the global loss per unit weight
        return 1 - guide.global_(images, targets).item() / sum(gm.weight for gm in guide.models)

    with torch.no_grad():
        image_start = G.synthesis(start, noise=noise)
        before = similarity(image_start)
    w = start.clone().requires_grad_(True)
    optimizer = torch.optim.Adam([w], lr=lr)
    losses = []
    for step in range(steps):
        t = step / steps
        for group in optimizer.param_groups:  # StyleCLIP's schedule: 5% warm-up, cosine ramp-down over the last 25%
            group["lr"] = lr * min(1.0, t / 0.05) * (0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / 0.25) * math.pi))
        image = G.synthesis(w, noise=noise)
        loss = guide.global_(image, targets) + l2_weight * (w - start).square().sum()
        if identity is not None:
            loss = loss + identity_weight * identity(image_start, image)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if log is not None and (step + 1) % max(1, steps // 5) == 0:
            log(f"edit step {step + 1}/{steps}: loss {loss.item():.4f}")
    w = w.detach()
    with torch.no_grad():
        after = similarity(G.synthesis(w, noise=noise))
    return Edit(w, before, after, (w - start).square().sum().item(), losses)


def edit_models(clip: str, *, device="cpu", identity: bool = True) -> tuple[ClipGuide, object, str]:
    """(guide with the named CLIP, the identity loss or None, a line saying whether identity is used)."""
    from nada_utils.models.clip_models import load_clip
    from nada_utils.models.identity import load_identity_loss

    guide = ClipGuide([(clip, load_clip(clip, device=device), 1.0)])
    loss, why = load_identity_loss(device=device) if identity else (None, "identity loss off")
    return guide, loss, why


@torch.no_grad()
def before_after(generators, ws_before: torch.Tensor, ws_after: torch.Tensor, noise=None) -> list[torch.Tensor]:
    """`[1, 3, H, W]` CPU renders, per generator: the latent before the edit, then after it."""
    return [g.synthesis(ws.to(next(g.parameters()).device), noise=noise).cpu()
            for g in generators for ws in (ws_before, ws_after)]
