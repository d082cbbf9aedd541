"""The inversion notebook's steps: pick an image, invert it, apply adapted generators, edit it with text.

Each step is the library's own (`nada_utils.invert.inversion`, `nada_utils.invert.latent_edit`), the same code the
`invert` and `edit` commands run, plus display: images inline and the numbers in one line.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import torch

from nada_utils.errors import NadaError
from nada_utils.images import image_grid, png_bytes, save_image
from nada_utils.invert.inversion import (
    Inversion,
    apply_adapted,
    read_target,
    run_inversion,
    save_inversion,
    side_by_side,
    summary,
)
from nada_utils.notebook.session import Session


def _show(image: torch.Tensor, caption: str) -> None:
    from IPython.display import Image, display

    print(caption)
    display(Image(data=png_bytes(image)))


def mini_world_photo(index: int = 0) -> str:
    """A held-out photo of the mini world the presets adapt (the second; drawn by the renderer, never by
    the generator) saved as a PNG; its path."""
    from nada_utils.mini_world.spec import MINI_GENERATOR
    from nada_utils.mini_world.world import render, scene_from_z
    from nada_utils.models.rendering import held_out_z

    scene = scene_from_z(held_out_z(index + 1, MINI_GENERATOR["z_dim"]))[index:]
    image = render(scene, "photo", MINI_GENERATOR["img_resolution"])[0]
    return str(save_image(image, Path(tempfile.gettempdir()) / f"nada_mini_photo_{index}.png"))


def choose_image(image_path: str, session: Session) -> Path:
    """`image_path` if given; in Colab with none given, an upload button (the file goes to WORKDIR/uploads)."""
    if image_path:
        path = Path(image_path).expanduser()
        if not path.is_file():
            raise NadaError(f"image not found: {path}; check image_path (in Colab, leave it empty to upload one)")
        return path
    if not session.in_colab:
        raise NadaError("set image_path to a photo's path (in Colab, leave it empty to get an upload button)")
    from google.colab import files  # only in Colab

    uploaded = files.upload()
    if not uploaded:
        raise NadaError("nothing was uploaded; run the cell again and pick an image")
    name, data = next(iter(uploaded.items()))
    path = session.workdir / "uploads" / Path(name).name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def invert(image_path, G_frozen, session: Session, *, steps: int = 500, latent: str = "w+", align: bool = False,
           encoder: str | None = None, clip: str = "ViT-B/32") -> Inversion:
    """Invert the image into G_frozen and show input | reconstruction with PSNR and LPIPS (or its CLIP fallback)."""
    inv = run_inversion(G_frozen, read_target(image_path, G_frozen, align=align), steps=steps, latent=latent, clip=clip,
                        encoder=encoder, device=session.device)
    inv.metrics["image"] = str(image_path)
    _show(image_grid(torch.cat([inv.image.cpu(), inv.reconstruction.cpu()]), nrow=2),
          f"input | reconstruction: {summary(inv)}")
    return inv


def image_folder(inv: Inversion, save_to) -> Path:
    """One folder per image under `save_to`, named after the image file, so a second photo keeps the first's results."""
    return Path(save_to) / Path(inv.metrics.get("image", "image")).stem


def show_inversion(inv: Inversion, G_adapted: dict, *, save_to=None) -> None:
    """Render the inverted latent with each adapted generator; show input | reconstruction | adapted...; save
    them with latents.pt and metrics.json to `save_to`/IMAGE_NAME."""
    apply_adapted(inv, G_adapted)
    _show(side_by_side(inv), "input | reconstruction | " + " | ".join(G_adapted))
    if save_to is not None:
        print(f"saved images, latents.pt and metrics.json to {save_inversion(inv, image_folder(inv, save_to))}")


def edit_with_text(inv: Inversion, text: str, G_frozen, G_adapted: dict, *, clip: str = "ViT-B/32", steps: int = 100,
                   save_to=None):
    """Move the inverted latent towards `text` (StyleCLIP optimisation); show before | edited for every generator;
    save the grid as `save_to`/IMAGE_NAME/edit.png."""
    from nada_utils.invert.latent_edit import before_after, edit_latent, edit_models

    guide, identity, why = edit_models(clip, device=next(G_frozen.parameters()).device)
    print(why)
    edit = edit_latent(G_frozen, inv.result.ws, text, guide, steps=steps, identity=identity, noise=inv.result.noise,
                       log=print)
    rows = before_after([G_frozen, *G_adapted.values()], inv.result.ws, edit.ws, inv.result.noise)
    grid = image_grid(torch.cat(rows), nrow=2)
    _show(grid, f"before | edited, rows: frozen, {', '.join(G_adapted)}; CLIP similarity to {text!r}: "
                f"{edit.similarity_before:.3f} -> {edit.similarity_after:.3f}")
    if save_to is not None:
        print(f"saved {save_image(grid, image_folder(inv, save_to) / 'edit.png')}")
    return edit
