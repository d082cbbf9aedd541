"""Inverting a user's image: image in, latent of G_frozen out, rendered with adapted generators.

One path for the CLI (`python -m nada_utils invert`) and the inversion notebook: read the image
(optionally FFHQ-aligned), find its latent with the e4e encoder and/or projection, measure the
reconstruction (PSNR, and LPIPS or its CLIP fallback), render the latent with each adapted
generator, and save it all. Everything that can fail on the user's input fails before anything is
written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch

from nada_utils.errors import NadaError
from nada_utils.invert.projection import Projection, loss_name, project, reconstruction_metrics

LOSSES = ("auto", "lpips", "clip", "pixel")


@dataclass
class Inversion:
    """An inverted image: the input as G sees it `[1, 3, H, W]`, its latent, the reconstruction and its metrics."""

    image: torch.Tensor
    result: Projection
    reconstruction: torch.Tensor
    metrics: dict
    renders: dict[str, torch.Tensor] = field(default_factory=dict)  # adapted name -> `[1, 3, H, W]`


def perceptual_models(loss: str = "auto", clip: str | None = "ViT-B/32", *, device="cpu") -> tuple:
    """(lpips, clip_model, note) for `project`: LPIPS-VGG when its weights are cached, else CLIP + pixel.

    `loss` "lpips" insists on LPIPS, "clip" uses the CLIP fallback, "pixel" plain MSE. With "auto" the
    CLIP model is only loaded when LPIPS is missing. The note says, in words, which loss was chosen.
    """
    from nada_utils.models.clip_models import load_clip
    from nada_utils.models.lpips import load_lpips

    if loss not in LOSSES:
        raise NadaError(f"loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    lpips, why = load_lpips(device=device) if loss in ("auto", "lpips") else (None, "")
    if loss == "lpips" and lpips is None:
        raise NadaError(why)
    clip_model = None
    if lpips is None and loss in ("auto", "clip"):
        if not clip:
            raise NadaError("the LPIPS fallback needs a CLIP model (--clip ViT-B/32, or mini-clip in the mini world)")
        clip_model = load_clip(clip, device=device)
    note = f"loss: {loss_name(lpips, clip_model)}" + (f" ({why})" if lpips is None and loss == "auto" else "")
    return lpips, clip_model, note


def read_target(path, G, *, align: bool = False) -> torch.Tensor:
    """The image at `path` as `[1, 3, R, R]` for G: FFHQ-aligned with dlib when `align`, else centre-cropped."""
    from nada_utils.images import load_image, pil_to_tensor

    if align:
        from nada_utils.models.face_align import align_face

        return pil_to_tensor(align_face(path, G.img_resolution), G.img_resolution)[None]
    return load_image(path, G.img_resolution)[None]


def invert_image(G, target: torch.Tensor, *, steps: int = 500, latent: str = "w+", lpips=None, clip_model=None,
                 encoder=None, log: Callable[[str], None] | None = None) -> Inversion:
    """Invert `target` (`[1, 3, R, R]` in [-1, 1]) into G: the e4e `encoder` first when given, then `steps`
    of projection (starting from the encoder's ws, if any). `steps=0` needs an encoder."""
    from nada_utils.invert.e4e import encode

    if steps < 0 or (steps == 0 and encoder is None):
        raise NadaError(f"steps must be >= 1 (or >= 0 with an encoder), got {steps}")
    device = next(G.parameters()).device
    target = target.to(device)
    result = encode(encoder, G, target) if encoder is not None else None
    if steps:
        start = None if result is None else result.ws
        result = project(G, target, steps=steps, latent=latent, lpips=lpips, clip_model=clip_model, start=start, log=log)
        if encoder is not None:
            result.loss_name = f"e4e encoder, then {steps} steps of {result.loss_name}"
    with torch.no_grad():
        rec = G.synthesis(result.ws, noise=result.noise)
    metrics = reconstruction_metrics(rec, target, lpips=lpips, clip_model=clip_model)
    metrics.update(loss=result.loss_name, latent=result.latent, steps=steps)
    return Inversion(target, result, rec, metrics)


def run_inversion(G, target: torch.Tensor, *, steps: int = 500, latent: str = "w+", loss: str = "auto",
                  clip: str | None = "ViT-B/32", encoder: str | None = None, device="cpu",
                  log: Callable[[str], None] = print) -> Inversion:
    """`invert_image` with its models chosen by name: the e4e `encoder` (a registry name or path), and the
    loss (`perceptual_models`; plain pixels when `steps` is 0, as only the encoder runs). Says which loss."""
    from nada_utils.invert.e4e import load_e4e

    enc = load_e4e(encoder, device=device) if encoder else None
    lpips, clip_model, note = perceptual_models(loss if steps else "pixel", clip, device=device)
    log(note if steps else "inverting with the encoder only (steps 0)")
    return invert_image(G, target, steps=steps, latent=latent, lpips=lpips, clip_model=clip_model, encoder=enc, log=log)


def summary(inv: Inversion) -> str:
    """The reconstruction's quality in one line: PSNR, LPIPS or the CLIP similarity, and the loss used."""
    quality = "".join(f", {k} {inv.metrics[k]:.3f}" for k in ("lpips", "clip_similarity") if k in inv.metrics)
    return f"PSNR {inv.metrics['psnr']:.2f} dB{quality} ({inv.metrics['loss']})"


@torch.no_grad()
def apply_adapted(inv: Inversion, adapted: dict) -> Inversion:
    """Render the inverted latent with each adapted generator (name -> G), keeping the fitted noise maps."""
    for name, g in adapted.items():
        inv.renders[name] = g.synthesis(inv.result.ws.to(next(g.parameters()).device), noise=inv.result.noise)
    return inv


def side_by_side(inv: Inversion) -> torch.Tensor:
    """One `[3, H, W]` strip: input, reconstruction, then each adapted render."""
    from nada_utils.images import image_grid

    rows = [inv.image, inv.reconstruction, *inv.renders.values()]
    return image_grid(torch.cat([r.cpu() for r in rows]), nrow=len(rows))


def save_inversion(inv: Inversion, out, *, extra: dict | None = None) -> Path:
    """Write input.png, reconstruction.png, adapted_i.png, side_by_side.png, latents.pt and metrics.json to `out`."""
    from nada_utils.fileio import atomic_torch_save, atomic_write_text
    from nada_utils.images import save_image

    out = Path(out)
    save_image(inv.image[0].cpu(), out / "input.png")
    save_image(inv.reconstruction[0].cpu(), out / "reconstruction.png")
    for i, render in enumerate(inv.renders.values()):
        save_image(render[0].cpu(), out / f"adapted_{i}.png")
    save_image(side_by_side(inv), out / "side_by_side.png")
    atomic_torch_save({"ws": inv.result.ws.cpu(), "noise": [n.cpu() for n in inv.result.noise],
                       "latent": inv.result.latent, **(extra or {})}, out / "latents.pt")
    metrics = {**inv.metrics, "adapted": list(inv.renders), **(extra or {})}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return out


def load_latents(path) -> dict:
    """A `latents.pt` written by `save_inversion` (or `edit`): ws, noise, and the generator it belongs to."""
    from nada_utils.weights.safe_pickle import load_pt

    data = load_pt(path)
    if not isinstance(data, dict) or not torch.is_tensor(data.get("ws")) or data["ws"].dim() != 3:
        raise NadaError(f"{path} is not a latents.pt from `invert` (no ws [1, num_ws, w_dim])")
    return data
