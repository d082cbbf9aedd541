"""The latents of a training step: z from the run's own seeded sampler, an optional style-mixing partner,
the class of each latent (conditional generators), and each generator's noise when it draws its own.

Everything is drawn from the one sampler whose state every checkpoint holds, so a resumed run draws
exactly what an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nada_utils.models.rendering import class_input
from nada_utils.models.stylegan2 import style_mix


@dataclass
class Latents:
    """One batch of z, with an optional style-mixing partner from W+ index `cutoff` on, and the noise
    inputs of G_frozen and G_train when each draws its own (`noise="random"`; None: the stored noise)."""

    z: torch.Tensor
    z_mix: torch.Tensor | None = None
    cutoff: int = 0
    noise: tuple[list[torch.Tensor], list[torch.Tensor]] | None = None
    cutoff_train: int | None = None  # G_train's own cutoff (`mixing_cutoff="independent"`); None: shared
    labels: torch.Tensor | None = None  # class of each latent `[N]` (conditional generators); the mix partner shares it

    def ws(self, G, truncation: float, *, train: bool = False) -> torch.Tensor:
        """`[N, num_ws, w_dim]` through G's own mapping network (`train`: with G_train's cutoff)."""
        c = class_input(G, self.labels, self.z.device)
        ws = G.mapping(self.z, c, truncation_psi=truncation)
        if self.z_mix is not None:
            cutoff = self.cutoff_train if train and self.cutoff_train is not None else self.cutoff
            ws = style_mix(ws, G.mapping(self.z_mix, c, truncation_psi=truncation), cutoff)
        return ws


def sample_latents(sampler: torch.Generator, n: int, *, z_dim: int, num_ws: int, mixing: float, device,
                   noise_sizes: list[tuple[int, int]] | None = None, independent_cutoff: bool = False,
                   classes: list[int] | None = None) -> Latents:
    """A batch of z from the run's own sampler; style-mixed with probability `mixing`.

    `noise_sizes` (the generator's noise resolutions): also draw fresh noise for each generator, from
    the same sampler, so that a resumed run draws what an uninterrupted one would.
    `independent_cutoff`: G_train mixes at a cutoff of its own, as each generator call of the official
    code draws one. `classes`: each latent's class, drawn uniformly from these (conditional generators;
    unconditional runs draw nothing more, so their stream of latents is what it always was)."""
    z = torch.randn(n, z_dim, generator=sampler).to(device)
    labels = None
    if classes:
        labels = torch.tensor(classes)[torch.randint(len(classes), (n,), generator=sampler)]
    latents = Latents(z, labels=labels)
    if mixing > 0 and torch.rand((), generator=sampler).item() < mixing:
        cutoff = int(torch.randint(1, num_ws, (), generator=sampler))
        latents = Latents(z, torch.randn(n, z_dim, generator=sampler).to(device), cutoff, labels=labels)
        if independent_cutoff:
            latents.cutoff_train = int(torch.randint(1, num_ws, (), generator=sampler))
    if noise_sizes:
        frozen, train = ([torch.randn(n, 1, h, w, generator=sampler).to(device) for h, w in noise_sizes] for _ in range(2))
        latents.noise = (frozen, train)
    return latents
