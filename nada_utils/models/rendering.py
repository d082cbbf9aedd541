"""Rendering seeds: the same seed gives the same image in the CLI, the notebooks and NVlabs' tools."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from nada_utils.errors import NadaError
from nada_utils.models.stylegan2 import z_from_seeds

EVAL_SEED = 2_000_003  # held-out latents: training draws from its own sampler, seeded by the config


def held_out_z(n: int, z_dim: int) -> torch.Tensor:
    """The evaluation latents: the same `n` z for every run and checkpoint of a generator."""
    return torch.randn(n, z_dim, generator=torch.Generator().manual_seed(EVAL_SEED))


def parse_seeds(text: str) -> list[int]:
    """"0-7" -> [0..7]; "1,5,9" -> [1, 5, 9]; ranges and lists combine ("0-3,10")."""
    seeds: list[int] = []
    try:
        for part in str(text).split(","):
            a, sep, b = part.strip().partition("-")
            seeds += list(range(int(a), int(b) + 1)) if sep else [int(a)]
    except ValueError:
        raise NadaError(f"bad seeds {text!r}; use a range like 0-7 or a list like 1,5,9") from None
    if not seeds or min(seeds) < 0 or len(seeds) > 10_000:
        raise NadaError(f"bad seeds {text!r}; give between 1 and 10000 seeds, all >= 0")
    return seeds


@torch.no_grad()
def render_seeds(G, seeds, *, truncation_psi: float = 1.0, noise_mode: str = "const",
                 class_idx: int | list[int] | None = None, device=None, batch: int = 8) -> torch.Tensor:
    """Images `[N, 3, H, W]` (on the CPU, about [-1, 1]) of G for `seeds`, `batch` at a time.
    `class_idx`: a conditional generator's class, or a list of classes that the seeds go through in turn."""
    if not 0.0 <= truncation_psi <= 1.0:
        raise NadaError(f"truncation must be in [0, 1], got {truncation_psi}")
    seeds = list(seeds)
    labels = seed_labels(G, class_idx, len(seeds))
    device = device or next(G.parameters()).device
    z_all = z_from_seeds(seeds, G.z_dim)
    out = []
    for i in range(0, len(z_all), batch):
        z = z_all[i:i + batch].to(device)
        c = None if labels is None else class_input(G, labels[i:i + batch], device)
        out.append(G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode).cpu())
    return torch.cat(out)


def check_class(G, class_idx: int | None) -> None:
    """A `--class` that fits G: required (and in range) for a conditional generator, refused otherwise."""
    if G.c_dim and (class_idx is None or not 0 <= class_idx < G.c_dim):
        raise NadaError(f"this generator is class-conditional: pass --class between 0 and {G.c_dim - 1}")
    if not G.c_dim and class_idx is not None:
        raise NadaError(f"--class {class_idx} given, but this generator has no classes; drop --class")


def seed_labels(G, class_idx: int | list[int] | None, n: int) -> torch.Tensor | None:
    """Labels `[n]` for n seeds of G: one class for all, or a list of classes the seeds take in turn;
    each checked against G (`check_class`). None for an unconditional G."""
    per_seed = isinstance(class_idx, (list, tuple))
    for k in class_idx if per_seed else [class_idx]:
        check_class(G, k)
    if class_idx is None:
        return None
    return cycle_classes(list(class_idx), n) if per_seed else torch.full((n,), class_idx)


def cycle_classes(classes: list[int] | None, n: int) -> torch.Tensor | None:
    """Labels `[n]` going through `classes` in turn (fixed grids and held-out sets), or None."""
    return None if classes is None else torch.tensor([classes[i % len(classes)] for i in range(n)])


def class_input(G, labels: torch.Tensor | None, device=None) -> torch.Tensor | None:
    """G's class input for labels `[N]`: one-hot `[N, c_dim]` (on `device`), or None for no labels."""
    return None if labels is None else F.one_hot(labels.to(device), G.c_dim).float()
