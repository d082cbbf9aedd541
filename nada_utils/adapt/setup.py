"""What a run trains with, built once from its config: the twin generators, the CLIP guide and its
target directions, and the layers with their optimiser.

`build_setup(cfg, device)` serves training, `evaluate` (with other CLIP judges) and the benchmark alike.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import torch

from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.config import DIRECTION_FLOOR, OFFICIAL_FLOOR, TrainConfig
from nada_utils.adapt.freezing import (
    is_noise_strength,
    official_ws_layers,
    parse_layer_spec,
    selectable_layers,
    set_trainable,
    static_layers,
)
from nada_utils.adapt.prompt_templates import CLASS_SLOT
from nada_utils.errors import NadaError
from nada_utils.images import load_image_folder
from nada_utils.models.rendering import class_input, cycle_classes
from nada_utils.models.stylegan2 import z_from_seeds


@dataclass
class Setup:
    """What a run trains with, built once from the config."""

    G_frozen: torch.nn.Module
    G_train: torch.nn.Module
    guide: ClipGuide
    directions: list[torch.Tensor]  # unit ΔT per CLIP model
    global_targets: list[torch.Tensor]  # unit target embedding per CLIP model (evaluation)
    identity: torch.nn.Module | None
    selection_targets: list[torch.Tensor] | None = None  # auto / gradnorm's target (default: global_targets)
    classes: list[int] | None = None  # a conditional generator's classes that steps draw from; None: unconditional
    class_names: list[str] | None = None  # every class's name, where known (labels of the sample grids)


def build_setup(cfg: TrainConfig, device: torch.device, *, log: Callable[[str], None] = lambda _: None,
                judges: tuple[str, ...] | None = None) -> Setup:
    """Load the run's generators and CLIP models and compute its target directions (text, or style images).

    A floor of None is chosen here (`start_floor`). With `{class}` in a prompt, directions and targets are
    per class (`[C, D]` per model, C the generator's classes). `judges`: score with these CLIP models
    instead (equal weights, no identity loss), as `evaluate --clip` does."""
    from nada_utils.models.generator_io import load_generator

    G_frozen = load_generator(cfg.generator, device=device)
    uses_slot = CLASS_SLOT in f"{cfg.source_text} {cfg.target_text}" and not cfg.style_images
    classes, known_names = check_classes(cfg.generator, G_frozen, cfg.classes, cfg.class_names, uses_slot=uses_slot)
    names = known_names if uses_slot else None  # per-class texts only where a prompt asks for them
    guide = _guide(cfg, G_frozen, device, log, judges)
    if cfg.style_images:
        style = load_image_folder(cfg.style_images, G_frozen.img_resolution).to(device)
        with torch.no_grad():
            # Reference images of the source domain: G_frozen samples from fixed seeds.
            z = z_from_seeds(range(max(8, len(style))), G_frozen.z_dim).to(device)
            frozen = G_frozen(z, class_input(G_frozen, cycle_classes(classes, len(z)), device), noise_mode="const")
        directions, targets = guide.image_directions(style, frozen), guide.image_targets(style)
        log(f"image-guided direction from {len(style)} images in {cfg.style_images}")
    else:
        directions = guide.text_directions(cfg.source_text, cfg.target_text, templates=cfg.templates, class_names=names)
        targets = guide.text_targets(cfg.target_text, templates=cfg.templates, class_names=names)
    # The official code's auto selection pushes W+ towards the bare target text, whatever the direction uses.
    selection = guide.text_targets(cfg.target_text, templates=False, class_names=names) \
        if cfg.selection_text == "bare" and not cfg.style_images else targets
    if names is not None:  # auto/gradnorm pick layers for the whole batch: per-class targets are averaged into one
        selection = [torch.nn.functional.normalize(t.mean(0), dim=-1) for t in selection]
    identity = None
    if cfg.id_weight > 0 and judges is None:
        from nada_utils.models.identity import load_identity_loss

        identity, message = load_identity_loss(device=device)
        log(message)
    return Setup(G_frozen, copy.deepcopy(G_frozen), guide, directions, targets, identity, selection, classes, known_names)


def _guide(cfg: TrainConfig, G_frozen, device: torch.device, log, judges) -> ClipGuide:
    """The CLIP models of the run (or the `judges`), at the run's precision, resize and direction floor."""
    from nada_utils.models.clip_models import load_clip

    floor = cfg.direction_floor
    if floor is None:
        floor = start_floor(G_frozen, cfg.noise)
        if floor != OFFICIAL_FLOOR:
            log(f"direction floor {floor:g}: both generators start equal here (ΔI = 0 at the first step: "
                + ("stored noise)" if cfg.noise == "stored" else "this generator has no noise inputs or none of any strength)"))
    if cfg.clip_precision == "fp16" and device.type != "cuda":
        raise NadaError(f"--clip-precision fp16 needs a CUDA GPU, and this run is on {device}; use fp32, or auto "
                        f"(float16 on a GPU, float32 elsewhere, as the official code)")
    half = cfg.clip_precision == "fp16" or (cfg.clip_precision == "auto" and device.type == "cuda")
    models, weights = (cfg.clip_models, cfg.clip_weights) if judges is None else (judges, (1.0,) * len(judges))
    return ClipGuide([(name, load_clip(name, device=device), w) for name, w in zip(models, weights)],
                     resize=cfg.clip_resize, half=half, floor=floor)


def start_floor(G, noise: str) -> float:
    """The directional loss's floor on |ΔI| for a run with this generator and noise (`losses.DIRECTION_FLOOR`
    where the first step has ΔI = 0: stored noise, or no noise input with a non-zero strength; else the
    official code's none)."""
    noisy = any(is_noise_strength(name) and bool(p.detach().abs().max() > 0) for name, p in G.named_parameters())
    return DIRECTION_FLOOR if noise == "stored" or not noisy else OFFICIAL_FLOOR


def check_classes(generator: str, G, classes, class_names, *, uses_slot: bool) -> tuple[list[int] | None, list[str] | None]:
    """(the classes steps draw from, their names where known) for G, or a NadaError saying what is missing."""
    if not G.c_dim:
        if classes:
            raise NadaError(f"--classes given, but {generator} has no classes; drop --classes")
        if uses_slot:
            raise NadaError(f"{CLASS_SLOT} in a prompt needs a class-conditional generator, and {generator} has no "
                            f"classes; write the prompt without {CLASS_SLOT}")
        return None, None
    classes = list(classes) if classes else list(range(G.c_dim))
    if max(classes) >= G.c_dim:
        raise NadaError(f"--classes {','.join(map(str, classes))}: {generator} has classes 0-{G.c_dim - 1}")
    names = list(class_names) if class_names else None
    if names is None:
        from nada_utils.weights.registry import REGISTRY

        names = list(REGISTRY[generator].class_names) if generator in REGISTRY and REGISTRY[generator].class_names else None
    if names is not None and len(names) != G.c_dim:
        raise NadaError(f"--class-names has {len(names)} names, but {generator} has {G.c_dim} classes; give one per class")
    if uses_slot and names is None:
        raise NadaError(f"{CLASS_SLOT} in a prompt needs the class names, and {generator} has none in the registry; "
                        f"pass --class-names with {G.c_dim} names")
    return classes, names


def layer_plan(G_train, cfg: TrainConfig):
    """(layer spec, the layers it can ever train, Adam over exactly those layers' parameters).

    A static spec trains all its candidates; a dynamic one (auto, gradnorm) turns subsets on per step.
    """
    spec = parse_layer_spec(cfg.layers, G_train, include_torgb=cfg.include_torgb)
    if spec.kind == "auto-official":  # the official table's layers, to_rgb1 among them
        candidates = official_ws_layers(G_train)
    elif spec.dynamic:
        candidates = selectable_layers(G_train, include_torgb=cfg.include_torgb)
    else:
        candidates = static_layers(spec, G_train, include_torgb=cfg.include_torgb)
    names = set(set_trainable(G_train, candidates, freeze_noise=cfg.freeze_noise))
    params = [p for n, p in G_train.named_parameters() if n in names]
    return spec, candidates, torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas)
