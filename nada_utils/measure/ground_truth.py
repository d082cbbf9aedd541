"""Ground-truth evaluators that a run's config can name (`TrainConfig.ground_truth`).

A generator whose latents have known true images in another domain (the mini world) can be scored
against them. The trainer calls `evaluate_ground_truth(name, ...)` at the end of a run and writes
`metrics.json`; it knows nothing about any particular world.
"""

from __future__ import annotations

from nada_utils.errors import NadaError


def _mini_world(domain: str, G_frozen, G_train, classes) -> dict:
    from nada_utils.mini_world.metrics import evaluate
    from nada_utils.mini_world.world import DOMAINS

    if domain not in DOMAINS:
        raise NadaError(f"mini-world has no domain {domain!r}; use one of {', '.join(DOMAINS)}")
    return evaluate(G_frozen, G_train, domain, classes=classes)


EVALUATORS = {"mini-world": _mini_world}
# Earlier names of a world, still accepted: run dirs made while a retired first mini world existed
# beside this one name it mini-world-2. They score as before, and a resume that asks for today's name
# is the same ground truth (`canonical_ground_truth`; docs/MINI_WORLD.md, "The world").
ALIASES = {"mini-world-2": "mini-world"}


def canonical_ground_truth(name: str | None) -> str | None:
    """`name` under its world's name of today ("mini-world-2:sketch" -> "mini-world:sketch")."""
    if name is None:
        return None
    world, sep, domain = name.partition(":")
    return f"{ALIASES.get(world, world)}{sep}{domain}"


def check_ground_truth(name: str | None) -> None:
    """Validate a `world:domain` name early, before any training."""
    if name is None:
        return
    world, sep, domain = canonical_ground_truth(name).partition(":")
    if world not in EVALUATORS or not sep or not domain:
        raise NadaError(f"unknown ground truth {name!r}; use WORLD:DOMAIN with WORLD one of {', '.join(EVALUATORS)}")


def evaluate_ground_truth(name: str, G_frozen, G_train, classes: list[int] | None = None) -> dict:
    """Metrics of G_train against the true target images of ground truth `name` ("mini-world:sketch");
    for a class-conditional generator, over `classes` (default all) with a `per_class` breakdown."""
    check_ground_truth(name)
    world, _, domain = canonical_ground_truth(name).partition(":")
    return EVALUATORS[world](domain, G_frozen, G_train, classes)
