"""Projection: the W or W+ latent (and noise maps) of G_frozen that reproduce a given image.

Shaped like NVlabs' `projector.py`: start from the mean w, add decaying noise to the latent early
on, follow a cosine learning-rate schedule with a short warm-up, optimise the per-layer noise maps
too while a multi-scale autocorrelation penalty keeps them noise-like, and renormalise them after
every step. The loss is LPIPS-VGG when an `LPIPS` module is given (as NVlabs does, on images reduced
to 256 px); otherwise pixel MSE plus, when a CLIP model is given, `clip_weight * (1 - cos)` between
the CLIP image features of the target and of the render, the fallback for when LPIPS's weights are
absent. G is never modified: its parameters are not optimised and its stored noise is not touched.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

from nada_utils.errors import NadaError
from nada_utils.models.clip_arch import clip_preprocess
from nada_utils.models.rendering import class_input


@dataclass
class Projection:
    """The result of `project`: `ws` `[1, num_ws, w_dim]` for `G.synthesis`, with the noise maps it was fitted with."""

    ws: torch.Tensor
    noise: list[torch.Tensor]
    latent: str  # "w" (one w repeated) or "w+"
    loss_name: str  # which loss was used, for the user to read
    losses: list[float] = field(default_factory=list)


def psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB of images in [-1, 1] (peak-to-peak 2)."""
    mse = F.mse_loss(a.clamp(-1, 1).float(), b.clamp(-1, 1).float()).item()
    return float("inf") if mse == 0 else 10 * math.log10(4.0 / mse)


def _noise_regulariser(noise: list[torch.Tensor]) -> torch.Tensor:
    """NVlabs' penalty: squared autocorrelation at shifts of 1 px, at every scale down to 8 px."""
    reg = noise[0].new_zeros(())
    for n in noise:
        while True:
            reg = reg + (n * torch.roll(n, 1, dims=3)).mean() ** 2 + (n * torch.roll(n, 1, dims=2)).mean() ** 2
            if n.shape[2] <= 8:
                break
            n = F.avg_pool2d(n, 2)
    return reg


def _at_most_256(images: torch.Tensor) -> torch.Tensor:
    return F.interpolate(images, size=(256, 256), mode="area") if images.shape[-1] > 256 else images


def loss_name(lpips=None, clip_model=None) -> str:
    """How `project` measures a reconstruction with these models, in words."""
    if lpips is not None:
        return "LPIPS-VGG"
    return "pixel MSE" + (" + CLIP features (LPIPS fallback)" if clip_model is not None else "")


@torch.no_grad()
def reconstruction_metrics(reconstruction: torch.Tensor, target: torch.Tensor, *, lpips=None, clip_model=None) -> dict:
    """PSNR, plus LPIPS when its module is given, else the CLIP image similarity when a CLIP model is given."""
    out = {"psnr": psnr(reconstruction, target)}
    reconstruction, target = reconstruction.clamp(-1, 1).float(), target.clamp(-1, 1).float()
    if lpips is not None:
        out["lpips"] = lpips(_at_most_256(reconstruction), _at_most_256(target)).mean().item()
    elif clip_model is not None:
        size = int(clip_model.visual.input_resolution)
        a, b = (F.normalize(clip_model.encode_image(clip_preprocess(x, size)).float(), dim=-1) for x in (reconstruction, target))
        out["clip_similarity"] = (a * b).sum(-1).mean().item()
    return out


def project(G, target: torch.Tensor, *, steps: int = 500, latent: str = "w", lr: float = 0.1, lpips=None,
            clip_model=None, clip_weight: float = 0.1, start: torch.Tensor | None = None, noise_weight: float = 1e5,
            initial_noise: float = 0.05, seed: int = 0,
            log: Callable[[str], None] | None = None) -> Projection:
    """Fit G's latent to `target` (`[3, H, W]` or `[1, 3, H, W]` in [-1, 1], at G's resolution).

    `clip_weight` 0.1: on mini-world photos, 1.0 let the CLIP term pull PSNR down to 22 dB, 0.1 kept it over 26.
    `start` (`[1, num_ws, w_dim]`, e.g. an encoder's output) replaces the mean w as the starting point.
    """
    if latent not in ("w", "w+"):
        raise NadaError(f"latent must be 'w' or 'w+', got {latent!r}")
    if steps < 1:
        raise NadaError(f"steps must be >= 1, got {steps}")
    device = next(G.parameters()).device
    target = (target[None] if target.dim() == 3 else target).to(device).float()
    if target.shape[1:] != (3, G.img_resolution, G.img_resolution):
        raise NadaError(f"the target is {tuple(target.shape[1:])}; this generator needs (3, {G.img_resolution}, "
                        f"{G.img_resolution}): load it with load_image(path, G.img_resolution)")
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        z = torch.randn(4096, G.z_dim, generator=gen).to(device)
        # A class-conditional generator's W holds every class: the statistics are over all of them.
        labels = torch.randint(G.c_dim, (len(z),), generator=gen) if G.c_dim else None
        w_samples = G.mapping(z, class_input(G, labels, device))[:, 0]  # [N, w_dim]
    w_avg = w_samples.mean(0, keepdim=True)
    w_std = (w_samples - w_avg).square().sum(1).mean().sqrt()
    rows = G.num_ws if latent == "w+" else 1
    if start is None:
        w_opt = w_avg[:, None].repeat(1, rows, 1)
    else:
        start = start.detach().to(device).float().reshape(1, G.num_ws, -1)
        w_opt = start if rows > 1 else start.mean(1, keepdim=True)
    w_opt = w_opt.clone().requires_grad_(True)
    # From scratch the noise maps start random (NVlabs); from an encoder's latent they start as G's stored
    # maps, which the encoder's output was made for.
    noise = [(b.detach().clone() if start is not None else torch.randn(b.shape, generator=gen).to(device)).requires_grad_(True)
             for b in G.make_noise(1, "const", device=device)]
    optimizer = torch.optim.Adam([w_opt, *noise], lr=lr, betas=(0.9, 0.999))
    target_features = target_small = None
    if lpips is not None:
        target_small = _at_most_256(target)
    elif clip_model is not None:
        with torch.no_grad():
            size = int(clip_model.visual.input_resolution)
            target_features = F.normalize(clip_model.encode_image(clip_preprocess(target, size)).float(), dim=-1)
    name = loss_name(lpips, clip_model)
    losses = []
    for step in range(steps):
        t = step / steps
        w_noise_scale = float(w_std) * initial_noise * max(0.0, 1.0 - t / 0.75) ** 2
        lr_t = lr * min(1.0, t / 0.05) * (0.5 - 0.5 * math.cos(min(1.0, (1.0 - t) / 0.25) * math.pi))
        for group in optimizer.param_groups:
            group["lr"] = max(lr_t, lr * 1e-3)
        ws = w_opt + torch.randn(w_opt.shape, generator=gen).to(device) * w_noise_scale
        ws = ws.expand(-1, G.num_ws, -1) if rows == 1 else ws
        image = G.synthesis(ws, noise=noise)
        if target_small is not None:
            loss = lpips(_at_most_256(image), target_small).mean()
        else:
            loss = F.mse_loss(image, target)
        if target_features is not None:
            features = F.normalize(clip_model.encode_image(clip_preprocess(image, size)).float(), dim=-1)
            loss = loss + clip_weight * (1 - (features * target_features).sum(-1)).mean()
        total = loss + noise_weight * _noise_regulariser(noise) if noise else loss  # a StyleGAN3 has no noise maps
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        losses.append(loss.item())
        with torch.no_grad():  # keep the noise maps zero-mean, unit-variance, as G was trained with
            for n in noise:
                n -= n.mean()
                n /= n.square().mean().sqrt()
        if log is not None and (step + 1) % max(1, steps // 10) == 0:
            log(f"projection step {step + 1}/{steps}: {name} {loss.item():.4f}")
    final = w_opt.detach().expand(-1, G.num_ws, -1).clone() if rows == 1 else w_opt.detach().clone()
    return Projection(final, [n.detach() for n in noise], latent, name, losses)
