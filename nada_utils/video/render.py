"""Rendering a video: the frozen generator and each adapted one side by side, frame batch by frame batch.

Three motions (`KINDS`):
- walk: a closed loop through the latents of some seeds (slerp in z, each generator mapping z itself,
  or lerp in w, the frozen generator's w given to every generator, as the official videos do);
- morph: fixed seeds while each adapted cell's weights blend from G_frozen to its G_train and back
  (`models.blending`), rows of seeds under a column per generator;
- photo: an inverted photo's latent (`invert`'s latents.pt): with an `edit` result, the latent moves
  to the edited one and back in every domain; without, the photo morphs into each domain.
Everything the user gave is checked before the file is opened, so a refused video writes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nada_utils.errors import NadaError
from nada_utils.models.blending import GeneratorBlend
from nada_utils.models.rendering import class_input, seed_labels
from nada_utils.models.stylegan2 import z_from_seeds
from nada_utils.video import motion
from nada_utils.video.encoders import VideoWriter, check_writable
from nada_utils.video.grid import Grid

KINDS = ("walk", "morph", "photo")
MAX_SIZE = 1024


@dataclass
class Video:
    """What `make_video` wrote: the file, its frame count and size, and the seconds rendering took."""

    path: Path
    frames: int
    fps: int
    width: int
    height: int
    seconds_taken: float


def check_settings(*, kind: str, fps: int, seconds: float, size: int) -> int:
    """The number of frames, or a NadaError for a setting no video can have."""
    if kind not in KINDS:
        raise NadaError(f"unknown video kind {kind!r}; choose one of {', '.join(KINDS)}")
    if not 1 <= fps <= 120:
        raise NadaError(f"--fps must be between 1 and 120, got {fps}")
    if size % 2 or not 16 <= size <= MAX_SIZE:
        raise NadaError(f"--size must be an even number of pixels from 16 to {MAX_SIZE} (H.264 needs even sizes), got {size}")
    frames = round(fps * seconds)
    if frames < 2:
        raise NadaError(f"{seconds} s at {fps} fps is {frames} frame(s); a video needs at least 2: raise --seconds")
    return frames


def _device(G):
    return next(G.parameters()).device


def _class_labels(G, n: int, class_idx: int | list[int] | None):
    """One-hot labels for n seeds: one class for all, or a list the seeds go through in turn."""
    return class_input(G, seed_labels(G, class_idx, n))


def _check_latents(name: str, ws: torch.Tensor, generators: dict) -> None:
    for label, G in generators.items():
        if ws.dim() != 3 or ws.shape[0] != 1 or ws.shape[1:] != (G.num_ws, G.w_dim):
            raise NadaError(f"{name} holds ws {tuple(ws.shape)} but {label} needs (1, {G.num_ws}, {G.w_dim}); "
                            "invert the photo with the generator these runs were adapted from")


def video_frames(G_frozen, adapted: dict, *, kind: str = "walk", seeds=(0, 1, 2), latents: dict | None = None,
                 edit: dict | None = None, fps: int = 24, seconds: float = 4.0, size: int | None = None,
                 truncation: float = 1.0, space: str = "z", one_way: bool = False,
                 class_idx: int | list[int] | None = None, batch: int = 8) -> tuple[Grid, int, Iterator[np.ndarray]]:
    """(the grid, the number of frames, an iterator over batches of frames `[B, H, W, 3]` uint8).

    Checks every setting first; frames are rendered only as the iterator is consumed. The cells are
    G_frozen and the `adapted` generators ({label: G}). `latents` / `edit` are loaded latents.pt dicts
    (`invert`, `edit`) for kind "photo"; `seeds` serve walk (the loop's key points) and morph (one row
    each). `one_way` makes morphs and edits go 0 -> 1 only, instead of there and back. A list of
    classes gives each seed its own (a morph's rows; a walk in w between them); a walk in z keeps the first.
    """
    size = size or min(G_frozen.img_resolution, 256)
    frames = check_settings(kind=kind, fps=fps, seconds=seconds, size=size)
    if not 0.0 <= truncation <= 1.0:
        raise NadaError(f"--truncation must be in [0, 1], got {truncation}")
    if space not in ("z", "w"):
        raise NadaError(f"--space must be z or w, got {space!r}")
    if batch < 1:
        raise NadaError(f"--batch must be >= 1, got {batch}")
    generators = {"frozen": G_frozen, **adapted}
    seeds = list(seeds)
    if kind == "walk" and len(seeds) < 2:
        raise NadaError("a walk needs at least two seeds to move between, e.g. --seeds 0-3")
    if kind == "morph" and not seeds:
        raise NadaError("a morph needs at least one seed, e.g. --seeds 0-3")
    if kind != "photo" and any(G.z_dim != G_frozen.z_dim for G in adapted.values()):
        raise NadaError("these generators take latents of different sizes; walk only generators adapted from one source")
    if kind == "photo":
        if latents is None:
            raise NadaError("a photo video needs the latents of an inverted photo (--latents DIR/latents.pt from `invert`)")
        _check_latents("the latents", latents["ws"], generators)
        if edit is not None:
            _check_latents("the edit's latents", edit["ws"], generators)
    if kind in ("morph", "photo") and not adapted and not (kind == "photo" and edit):
        raise NadaError(f"a {kind} blends into adapted generators: pass at least one (--adapted)")
    blends = {}
    if kind == "morph" or (kind == "photo" and edit is None):
        blends = {label: GeneratorBlend(G_frozen, G) for label, G in adapted.items()}  # refuses other architectures
    c = _class_labels(G_frozen, max(len(seeds), 1), class_idx) if kind != "photo" else None

    if kind == "morph":
        grid = Grid(list(generators) * len(seeds), size, ncol=len(generators), label_first_row_only=True)
        z = z_from_seeds(seeds, G_frozen.z_dim)
        cells = _morph(G_frozen, blends, _alphas(frames, one_way),
                       lambda G: G(z.to(_device(G)), None if c is None else c.to(_device(G)),
                                   truncation_psi=truncation, noise_mode="const"))
    else:
        grid = Grid(list(generators), size)
        if kind == "walk":
            cells = _walk(generators, seeds, frames, space=space, truncation=truncation, c=c, batch=batch)
        else:
            noise = list(latents.get("noise") or []) or None
            ws0 = latents["ws"].float()
            if edit is None:
                cells = _morph(G_frozen, blends, _alphas(frames, one_way),
                               lambda G: G.synthesis(ws0.to(_device(G)), noise=_on(noise, G)))
            else:
                path = torch.lerp(ws0, edit["ws"].float(), _alphas(frames, one_way).view(-1, 1, 1))
                cells = _along(generators, path, batch, lambda G, ws: G.synthesis(ws.to(_device(G)), noise=_on(noise, G)))
    return grid, frames, (grid.compose(c) for c in cells)


def make_video(out, G_frozen, adapted: dict, *, fps: int = 24, progress: bool = True, **settings) -> Video:
    """Render `video_frames(G_frozen, adapted, fps=fps, **settings)` to `out` (.mp4 or .gif), streaming
    the frames to the encoder; nothing is written when a setting or the output is refused."""
    from tqdm.auto import tqdm

    grid, frames, batches = video_frames(G_frozen, adapted, fps=fps, **settings)
    check_writable(out, frames=frames, width=grid.width, height=grid.height)
    t0 = time.time()
    with VideoWriter(out, fps=fps, width=grid.width, height=grid.height) as writer, \
            tqdm(total=frames, unit="frame", desc=Path(out).name, disable=not progress) as bar:
        for images in batches:
            writer.write(images)
            bar.update(len(images))
    return Video(Path(out), writer.frames, fps, grid.width, grid.height, time.time() - t0)


def _alphas(frames: int, one_way: bool) -> torch.Tensor:
    return motion.one_way(frames) if one_way else motion.bounce(frames)


def _on(noise, G):
    return None if noise is None else [n.to(_device(G)) for n in noise]


@torch.no_grad()
def _along(generators: dict, path: torch.Tensor, batch: int, render):
    """Cells for frames whose latents are `path` `[F, ...]`: `render(G, latents)` per generator, `batch` frames at a time."""
    for i in range(0, path.shape[0], batch):
        yield [render(G, path[i:i + batch]).cpu() for G in generators.values()]


def _walk(generators: dict, seeds, frames: int, *, space: str, truncation: float, c, batch: int):
    G_frozen = next(iter(generators.values()))
    keys = z_from_seeds(seeds, G_frozen.z_dim)

    def labels(G, n):  # a walk in z moves z only: one class throughout
        return None if c is None else c[:1].expand(n, -1).to(_device(G))

    if space == "z":
        path = motion.loop(keys, frames, spherical=True)
        return _along(generators, path, batch, lambda G, z: G(z.to(_device(G)), labels(G, len(z)),
                                                               truncation_psi=truncation, noise_mode="const"))
    with torch.no_grad():  # in w, each key point is mapped with its own class
        ws = G_frozen.mapping(keys.to(_device(G_frozen)), None if c is None else c.to(_device(G_frozen)),
                              truncation_psi=truncation).cpu()
    return _along(generators, motion.loop(ws, frames, spherical=False), batch,
                  lambda G, w: G.synthesis(w.to(_device(G)), noise_mode="const"))


@torch.no_grad()
def _morph(G_frozen, blends: dict, alphas: torch.Tensor, render):
    """Per frame, one `[1, 3, H, W]` image per cell: the frozen generator's (rendered once) and each
    blend's at the frame's alpha, row by row (seed s's row holds every generator's image of seed s)."""
    still = render(G_frozen).cpu()
    for alpha in alphas.tolist():
        columns = [still] + [render(blend.at(alpha)).cpu() for blend in blends.values()]
        yield [col[s:s + 1] for s in range(still.shape[0]) for col in columns]
