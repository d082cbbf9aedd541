"""Procedural scenes drawn in four domains: photo, sketch, cartoon and night.

A scene is a vector in [0, 1]^SCENE_DIM: shape kind, colour, size, position, rotation, background
and lighting. `render(scenes, domain)` draws the same scenes in any domain, so content (what is
where) and style (how it is drawn) are separable. Everything is vectorised torch; images come out
as `[N, 3, R, R]` in [-1, 1], antialiased by 2x supersampling.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from nada_utils.mini_world.world_v2 import hsv

SCENE_DIM = 10
SHAPES = ("circle", "square", "triangle")
COLOURS = (("red", 0.0), ("orange", 0.075), ("yellow", 0.15), ("green", 0.33), ("blue", 0.62), ("purple", 0.78))
DOMAINS = ("photo", "sketch", "cartoon", "night")


def scene_from_z(z: torch.Tensor) -> torch.Tensor:
    """The fixed, smooth map from latents `[N, z_dim]` (z_dim >= SCENE_DIM) to scenes `[N, SCENE_DIM]` in (0, 1).

    The normal CDF of the first SCENE_DIM coordinates of z scaled to norm sqrt(z_dim): StyleGAN's
    mapping starts by normalising z this way, so the scene is a function of what the generator sees.
    """
    z = z.float()
    zn = z * torch.rsqrt(z.square().mean(dim=1, keepdim=True) + 1e-8)
    return 0.5 * (1 + torch.erf(zn[:, :SCENE_DIM] / math.sqrt(2)))


def describe(scenes: torch.Tensor) -> list[tuple[str, str]]:
    """(colour name, shape name) per scene, for captions."""
    kinds = (scenes[:, 0] * len(SHAPES)).long().clamp(max=len(SHAPES) - 1)
    cols = (scenes[:, 1] * len(COLOURS)).long().clamp(max=len(COLOURS) - 1)
    return [(COLOURS[c][0], SHAPES[k]) for c, k in zip(cols.tolist(), kinds.tolist())]


def _sdf(kind, px, py, r):
    """Signed distance (negative inside) of circle / square / triangle of radius r, per pixel."""
    circle = torch.sqrt(px**2 + py**2) - r
    b = r * 0.82
    qx, qy = px.abs() - b, py.abs() - b
    square = torch.sqrt(qx.clamp(min=0) ** 2 + qy.clamp(min=0) ** 2) + torch.maximum(qx, qy).clamp(max=0)
    k = math.sqrt(3)
    tr = r * 1.15
    tx, ty = px.abs() - tr, -py + tr / k
    fold = tx + k * ty > 0
    tx, ty = torch.where(fold, (tx - k * ty) / 2, tx), torch.where(fold, (-k * tx - ty) / 2, ty)
    tx = tx - torch.minimum(torch.maximum(tx, -2 * tr), torch.zeros_like(tx))
    triangle = -torch.sqrt(tx**2 + ty**2) * torch.sign(ty)
    return torch.where(kind == 0, circle, torch.where(kind == 1, square, triangle))


def render(scenes: torch.Tensor, domain: str, resolution: int = 64) -> torch.Tensor:
    """Draw scenes `[N, SCENE_DIM]` in `domain` -> `[N, 3, resolution, resolution]` in [-1, 1]."""
    if domain not in DOMAINS:
        raise ValueError(f"domain must be one of {DOMAINS}, got {domain!r}")
    s = scenes.float()
    n, dev = s.shape[0], s.device
    size = 2 * resolution  # supersampled
    coords = (torch.arange(size, device=dev, dtype=torch.float32) + 0.5) / size * 2 - 1
    y, x = torch.meshgrid(coords, coords, indexing="ij")
    x, y = x[None], y[None]  # [1, S, S]
    px_size = 2.0 / size

    def col(i):
        return s[:, i].view(n, 1, 1)

    kind = (s[:, 0] * len(SHAPES)).long().clamp(max=len(SHAPES) - 1).view(n, 1, 1)
    ci = (s[:, 1] * len(COLOURS)).long().clamp(max=len(COLOURS) - 1)
    hue = torch.tensor([h for _, h in COLOURS], device=dev)[ci] + (s[:, 1] * len(COLOURS) % 1 - 0.5) * 0.04
    r = 0.3 + 0.25 * col(2)
    cx, cy = (col(3) - 0.5) * 0.6, (col(4) - 0.5) * 0.6
    theta = col(5) * (2 * math.pi / 3)
    dx, dy = x - cx, y - cy
    px = dx * torch.cos(theta) + dy * torch.sin(theta)
    py = -dx * torch.sin(theta) + dy * torch.cos(theta)
    sdf = _sdf(kind, px, py, r)
    inside = (0.5 - sdf / px_size).clamp(0, 1)  # antialiased coverage
    la = col(8) * 2 * math.pi
    lx, ly = torch.cos(la), torch.sin(la)
    strength = 0.4 + 0.6 * col(9)
    light = (dx * lx + dy * ly) / r  # across the shape, about [-1, 1] towards the light
    bg_h, bg_v = col(6), col(7)
    ones = torch.ones_like(x)

    if domain == "cartoon":
        bg = hsv(bg_h * ones, 0.45 * ones, 0.97 * ones)
        fg = hsv(hue.view(n, 1, 1) * ones, 0.95 * ones, 1.0 * ones)
        line = (0.5 - (sdf.abs() - 2.2 * px_size) / px_size).clamp(0, 1)
        img = bg * (1 - inside[..., None]) + fg * inside[..., None]
        img = img * (1 - line[..., None])
    elif domain == "sketch":
        paper = 0.93 + 0.04 * (x * lx + y * ly) * 0.5
        line = (0.5 - (sdf.abs() - 1.2 * px_size) / px_size).clamp(0, 1)
        # Hatching on the shaded side of the shape, like pencil shading.
        hatch = (torch.sin((x + y) * size * 0.55) > 0.3).float()
        shade = (0.5 - 0.5 * light * strength).clamp(0, 1)
        g = paper * (1 - 0.8 * line) * (1 - 0.45 * hatch * inside * shade)
        img = g[..., None].expand(n, size, size, 3)
    else:
        bg_l = 0.75 + 0.25 * strength * (x * lx + y * ly) * 0.5
        bg = hsv(bg_h * ones, 0.35 * ones, (0.45 + 0.4 * bg_v) * bg_l)
        shade = 0.72 + 0.28 * strength * light.clamp(-1, 1)
        fg = hsv(hue.view(n, 1, 1) * ones, 0.8 * ones, 0.95 * shade)
        # A soft shadow of the shape, cast away from the light.
        sh = (0.5 - _sdf(kind, px + 0.08 * (lx * torch.cos(theta) + ly * torch.sin(theta)),
                         py + 0.08 * (-lx * torch.sin(theta) + ly * torch.cos(theta)), r) / (6 * px_size)).clamp(0, 1)
        bg = bg * (1 - 0.35 * strength * sh)[..., None]
        img = bg * (1 - inside[..., None]) + fg * inside[..., None]
        if domain == "night":
            img = img * torch.tensor([0.22, 0.27, 0.5], device=dev) + torch.tensor([0.02, 0.03, 0.08], device=dev)
    img = img.permute(0, 3, 1, 2)
    img = F.avg_pool2d(img, 2)
    return img.clamp(0, 1) * 2 - 1
