"""Where each frame of a video is: latents along a closed loop, and blend weights for morphs.

Loops are made for replay: the frame after the last one would be the first, so a GIF or a looping
MP4 shows no jump. Each segment between two key points is eased with a half cosine, so the motion
slows at every seed (where the viewer can see it) and never changes speed abruptly.
"""

from __future__ import annotations

import math

import torch


def ease(t: torch.Tensor) -> torch.Tensor:
    """0 -> 0, 1 -> 1, with zero speed at both ends."""
    return 0.5 - 0.5 * torch.cos(math.pi * t)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation of rows `a`, `b` `[N, D]` at `t` `[N]`, with the norms interpolated
    linearly: Gaussian z keep their typical norm, where a straight line would pass near the origin."""
    na, nb = a.norm(dim=1, keepdim=True), b.norm(dim=1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    t = t[:, None]
    so = torch.sin(omega)
    direction = (torch.sin((1 - t) * omega) * ua + torch.sin(t * omega) * ub) / so
    return direction * torch.lerp(na, nb, t)


def loop(points: torch.Tensor, frames: int, *, spherical: bool) -> torch.Tensor:
    """`frames` points `[frames, ...]` on the closed loop through `points` `[K, ...]` (K >= 2), in order,
    back to the first; frame 0 is points[0]. Spherical (z) or straight (w) between key points."""
    k = points.shape[0]
    u = torch.arange(frames, dtype=torch.float64) * k / frames
    seg = u.floor().long().clamp(max=k - 1)
    t = ease(u - seg).to(points.dtype)
    a, b = points[seg], points[(seg + 1) % k]
    if spherical:
        return slerp(a.flatten(1), b.flatten(1), t).view_as(a)
    return torch.lerp(a, b, t.view(-1, *[1] * (a.dim() - 1)))


def bounce(frames: int) -> torch.Tensor:
    """Blend weights `[frames]` from 0 up to 1 (at the middle frame) and back: a closed morph."""
    return ease(2 * torch.arange(frames, dtype=torch.float64) / frames).float() if frames > 1 else torch.zeros(1)


def one_way(frames: int) -> torch.Tensor:
    """Blend weights `[frames]` from 0 (first frame) to 1 (last), evenly spaced."""
    return torch.linspace(0, 1, frames)
