"""Honest metrics of the mini world: what a person would check, scored by a judge training never saw.

For held-out z the scene is known (`world.scene_from_z`), so is the true target image and the
shape's mask. Headline figures, each with the frozen generator's value beside it:
- `judged_target`: share of adapted samples the judge (`mini_world.judge`) calls the target domain;
- `shape_kept`: share whose shape, as the judge names it, is the scene's;
- `edge_f1`: F1 of the adapted image's edge pixels against the true target's, with 1 px of tolerance.
  Edges are Sobel on reflect-padded grey images, so no frame of edges appears at the border;
- `gap_closed`: the share of the pixel gap between frozen and true target that adaptation closed,
  computed on the shape and on the page separately and averaged, so that the page cannot carry it.
A blank page, a copy of the input and noise all score badly on the first three
(`tests/test_metrics.py`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nada_utils.mini_world.judge import judge as judge_images
from nada_utils.mini_world.world import SHAPES, render, scene_from_z, shape_index, shape_mask
from nada_utils.models.rendering import class_input, cycle_classes, held_out_z  # held-out latents: never trained on

EDGE_THRESHOLD = 0.1  # a step of 0.1 in brightness (images in [0, 1]) is an edge


def sobel(gray: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Horizontal and vertical Sobel responses of `[N, 1, H, W]` images, reflect-padded: zero padding
    would give every bright image a frame of edges (docs/MINI_WORLD.md, "The world")."""
    kx = torch.tensor([[-1.0, 0, 1], [-2, 0, 2], [-1, 0, 1]], device=gray.device).view(1, 1, 3, 3)
    padded = F.pad(gray, (1, 1, 1, 1), mode="reflect")
    return F.conv2d(padded, kx), F.conv2d(padded, kx.transpose(2, 3))


def edges(images: torch.Tensor) -> torch.Tensor:
    """Boolean edge maps `[N, H, W]` of images `[N, 3, H, W]` in [-1, 1]: Sobel magnitude of the grey
    image (scaled so that a step of height h gives h) above EDGE_THRESHOLD."""
    gx, gy = sobel(((images.float() + 1) / 2).mean(1, keepdim=True))
    gx, gy = gx / 4, gy / 4  # the kernel's weights sum to 4 on each side
    return (torch.sqrt(gx**2 + gy**2) > EDGE_THRESHOLD)[:, 0]


def edge_f1(images: torch.Tensor, targets: torch.Tensor, tolerance: int = 1) -> float:
    """Mean over images of the F1 of their edge pixels against the targets', within `tolerance` pixels.

    Precision: the share of an image's edge pixels that lie within `tolerance` of a target edge;
    recall: the share of target edge pixels within `tolerance` of an image edge. An image without
    edges scores 0 (against a target with edges)."""
    a, b = edges(images).float(), edges(targets).float()
    k = 2 * tolerance + 1

    def near(x):
        return F.max_pool2d(x[:, None], k, stride=1, padding=tolerance)[:, 0]

    precision = (a * near(b)).sum((1, 2)) / a.sum((1, 2)).clamp(min=1)
    recall = (b * near(a)).sum((1, 2)) / b.sum((1, 2)).clamp(min=1)
    f1 = 2 * precision * recall / (precision + recall).clamp(min=1e-8)
    return f1.mean().item()


def region_gap_closed(frozen: torch.Tensor, adapted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> dict:
    """`gap_closed` on the shape (mask > 0.5) and on the page, and their mean."""
    inside = (mask > 0.5).float()
    out = {}
    for name, region in (("shape", inside), ("page", 1 - inside)):
        gap_frozen = ((frozen - target).abs() * region).sum()
        gap_adapted = ((adapted - target).abs() * region).sum()
        out[f"gap_closed_{name}"] = 1.0 - (gap_adapted / gap_frozen.clamp(min=1e-8)).item()
    out["gap_closed"] = (out["gap_closed_shape"] + out["gap_closed_page"]) / 2
    return out


def judged(judge_model, images: torch.Tensor, scenes: torch.Tensor, domain: str) -> dict:
    """Share of images judged to be `domain`, share whose judged shape is the scene's, and the judged domains."""
    domains, shapes = judge_images(judge_model, images)
    truth = [SHAPES[i] for i in shape_index(scenes).tolist()]
    n = len(domains)
    return {"target": sum(d == domain for d in domains) / n,
            "shape": sum(s == t for s, t in zip(shapes, truth)) / n,
            "domains": {d: domains.count(d) / n for d in sorted(set(domains))}}


def score(frozen: torch.Tensor, adapted: torch.Tensor, scenes: torch.Tensor, domain: str, judge_model) -> dict:
    """Every metric for images of `scenes` (frozen and adapted `[N, 3, R, R]` in [-1, 1]) against `domain`."""
    resolution = frozen.shape[-1]
    target = render(scenes, domain, resolution).to(frozen.device)
    mask = shape_mask(scenes, resolution).to(frozen.device)
    a, f = judged(judge_model, adapted, scenes, domain), judged(judge_model, frozen, scenes, domain)
    return {
        "domain": domain,
        "judged_target": a["target"], "judged_target_frozen": f["target"],
        "shape_kept": a["shape"], "shape_kept_frozen": f["shape"],
        "edge_f1": edge_f1(adapted, target), "edge_f1_frozen": edge_f1(frozen, target),
        **region_gap_closed(frozen, adapted, target, mask),
        "judged_domains": a["domains"],
    }


def held_out(G, n: int, classes: list[int] | None = None):
    """(z, labels or None, scenes) of n held-out latents of mini generator G. A conditional G's class
    is the scene's shape: its latents go through `classes` (default: every shape) in turn."""
    from nada_utils.errors import NadaError

    z = held_out_z(n, G.z_dim)
    if not G.c_dim:
        return z, None, scene_from_z(z)
    if G.c_dim != len(SHAPES):
        raise NadaError(f"mini-world scores generators whose {len(SHAPES)} classes are its shapes "
                        f"({', '.join(SHAPES)}), not {G.c_dim} classes; drop the ground truth")
    labels = cycle_classes(list(range(len(SHAPES))) if classes is None else classes, n)
    return z, labels, scene_from_z(z, labels)


@torch.no_grad()
def evaluate(G_frozen, G_train, domain: str, *, n: int = 128, judge_model=None,
             classes: list[int] | None = None) -> dict:
    """All metrics for `domain` over `n` held-out z; frozen baselines included.

    A class-conditional mini generator's class is the scene's shape (`world.scene_from_z`): its
    held-out latents go through `classes` (default: every shape) in turn, and `per_class` holds every
    metric for each shape, named."""
    from nada_utils.mini_world.judge import load_judge

    device = next(G_train.parameters()).device
    z, labels, scenes = held_out(G_frozen, n, classes)
    z, labels, scenes = z.to(device), None if labels is None else labels.to(device), scenes.to(device)
    c = class_input(G_frozen, labels, device)
    frozen, adapted = G_frozen(z, c).clamp(-1, 1), G_train(z, c).clamp(-1, 1)
    judge_model = judge_model or load_judge(device=device)
    out = {"n_held_out": n, **score(frozen, adapted, scenes, domain, judge_model)}
    if labels is not None:
        out["per_class"] = {SHAPES[k]: {"n": int((labels == k).sum()), **score(
            frozen[labels == k], adapted[labels == k], scenes[labels == k], domain, judge_model)}
            for k in labels.unique().tolist()}
    return out
