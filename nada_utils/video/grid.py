"""Tiling a video's cells: one cell per generator (and seed), each with its name above it.

The labelled background is drawn once; each frame only pastes the cells' pixels into a copy, so a
frame costs one resize per cell and one array copy. Every size is even, as H.264 in yuv420p needs.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from nada_utils.images import draw_labels, label_height, to_uint8

PAD = 2  # white gap between cells, as in image_grid


class Grid:
    """`labels[i]` names cell i; cells fill rows of `ncol` (default: as square as possible).
    With `label_first_row_only` (rows of seeds under one name per column), only the top row has names."""

    def __init__(self, labels: list[str], size: int, *, ncol: int | None = None, label_first_row_only: bool = False):
        self.n, self.size = len(labels), size
        self.ncol = ncol or math.ceil(math.sqrt(self.n))
        self.nrow = math.ceil(self.n / self.ncol)
        self.lh = label_height(size)
        self._labelled_rows = {0} if label_first_row_only else set(range(self.nrow))
        self._tops = []
        y = PAD
        for r in range(self.nrow):
            y += self.lh if r in self._labelled_rows else 0
            self._tops.append(y)
            y += size + PAD
        self.height, self.width = y, self.ncol * (size + PAD) + PAD
        self.background = self._draw_labels(labels)

    def cell_origin(self, i: int) -> tuple[int, int]:
        r, c = divmod(i, self.ncol)
        return self._tops[r], PAD + c * (self.size + PAD)

    def _draw_labels(self, labels: list[str]) -> np.ndarray:
        from PIL import Image

        canvas = Image.new("RGB", (self.width, self.height), "white")
        placed = []
        for i, text in enumerate(labels):
            if i // self.ncol in self._labelled_rows:
                y, x = self.cell_origin(i)
                placed.append((text, x + self.size / 2, y - self.lh / 2))
        draw_labels(canvas, placed, width=self.size, height=self.lh)
        return np.asarray(canvas).copy()

    def compose(self, cells: list[torch.Tensor]) -> np.ndarray:
        """Frames `[B, H, W, 3]` uint8 from per-cell images `[B, 3, h, w]` in [-1, 1] (any h = w)."""
        b = cells[0].shape[0]
        out = np.repeat(self.background[None], b, axis=0)
        for i, images in enumerate(cells):
            images = images.detach().float().cpu()
            if images.shape[-1] != self.size:
                # Area averaging when shrinking (no aliasing shimmer as the walk moves), bilinear when enlarging.
                mode = "area" if images.shape[-1] > self.size else "bilinear"
                images = F.interpolate(images, size=(self.size, self.size), mode=mode,
                                       **({"align_corners": False} if mode == "bilinear" else {}))
            pixels = to_uint8(images).numpy()
            y, x = self.cell_origin(i)
            out[:, y:y + self.size, x:x + self.size] = pixels
        return out
