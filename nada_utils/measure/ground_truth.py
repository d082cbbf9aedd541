"""Ground-truth evaluators that a run's config can name (`TrainConfig.ground_truth`).

A generator whose latents have known true images in another domain (the mini world) can be scored
against them. The trainer calls `evaluate_ground_truth(name, ...)` at the end of a run and writes
`metrics.json`; it knows nothing about any particular world.
"""

from __future__ import annotations

from nada_utils.errors import NadaError


def _mini_world(domain: str, G_frozen, G_train, classes) -> dict:
    from nada_utils.mini_world.metrics import evaluate
    from nada_utils.mini_world.renderer import DOMAINS

    if domain not in DOMAINS:
        raise NadaError(f"mini-world has no domain {domain!r}; use one of {', '.join(DOMAINS)}")
    if G_frozen.c_dim:
        raise NadaError("mini-world scores the first world's unconditional generator, not a class-conditional "
                        "one; use mini-world-2, whose classes are its shapes")
    return evaluate(G_frozen, G_train, domain)


def _mini_world_2(domain: str, G_frozen, G_train, classes) -> dict:
    from nada_utils.mini_world.metrics_v2 import evaluate
    from nada_utils.mini_world.world_v2 import DOMAINS

    if domain not in DOMAINS:
        raise NadaError(f"mini-world-2 has no domain {domain!r}; use one of {', '.join(DOMAINS)}")
    return evaluate(G_frozen, G_train, domain, classes=classes)


# mini-world: the first world (runs made with it still score as they did); mini-world-2: issue 18's.
EVALUATORS = {"mini-world": _mini_world, "mini-world-2": _mini_world_2}


def check_ground_truth(name: str | None) -> None:
    """Validate a `world:domain` name early, before any training."""
    if name is None:
        return
    world, sep, domain = name.partition(":")
    if world not in EVALUATORS or not sep or not domain:
        raise NadaError(f"unknown ground truth {name!r}; use WORLD:DOMAIN with WORLD one of {', '.join(EVALUATORS)}")


def evaluate_ground_truth(name: str, G_frozen, G_train, classes: list[int] | None = None) -> dict:
    """Metrics of G_train against the true target images of ground truth `name` ("mini-world-2:sketch");
    for a class-conditional generator, over `classes` (default all) with a `per_class` breakdown."""
    check_ground_truth(name)
    world, _, domain = name.partition(":")
    return EVALUATORS[world](domain, G_frozen, G_train, classes)
