"""The NADA training loop: twin generators, directional CLIP loss, layer selection, exact resume.

`train(cfg, run_dir)` is the one entry point (the CLI and the notebooks call it). Each step samples
z from the run's own seeded sampler, renders it with G_frozen (no grad) and G_train from the same
w and the same stored noise, and moves G_train's selected layers so that the CLIP image direction
follows the text direction. Checkpoints hold all state, so a run killed at any moment and resumed
ends with the same weights, bit for bit, as one that never stopped.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from nada_utils.adapt.checkpoint import checkpoint_dir, load_checkpoint, restore_rng, rng_state, save_checkpoint
from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.config import TrainConfig
from nada_utils.adapt.freezing import (
    official_ws_layers,
    parse_layer_spec,
    selectable_layers,
    set_trainable,
    static_layers,
)
from nada_utils.adapt.losses import DIRECTION_FLOOR, OFFICIAL_FLOOR
from nada_utils.adapt.prompt_templates import CLASS_SLOT
from nada_utils.adapt.run_dir import clear_failed_start, has_results, open_run, read_evals, run_lock, truncate_log
from nada_utils.adapt.selection import select_layers
from nada_utils.adapt.training_step import (
    StepSettings,
    as_floats,
    backward_step,
    parse_fast,
    precision,
    prepare_fast,
)
from nada_utils.devices import resolve_device, tune_cpu_allocator
from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_write_text
from nada_utils.images import image_grid, load_image_folder, save_image
from nada_utils.measure.evaluation import best_step, write_evaluation
from nada_utils.models.generator_io import save_generator
from nada_utils.models.rendering import class_input, cycle_classes
from nada_utils.models.stylegan2 import style_mix, z_from_seeds


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


def build_setup(*, generator: str, clip_models, clip_weights, source_text: str, target_text: str, templates: bool,
                style_images: str | None, id_weight: float, device: torch.device, log: Callable[[str], None],
                clip_precision: str, clip_resize: str, selection_text: str,
                direction_floor: float | None, noise: str, classes=None, class_names=None) -> Setup:
    """Load the generators and CLIP models and compute the target directions (text, or style images).

    clip_precision, clip_resize, selection_text, direction_floor, noise, classes, class_names: as the
    `TrainConfig` fields of those names (a floor of None: `start_floor`'s). With `{class}` in a prompt, directions and targets are per
    class (`[C, D]` per model, C the generator's classes)."""
    from nada_utils.models.clip_models import load_clip
    from nada_utils.models.generator_io import load_generator
    from nada_utils.models.identity import load_identity_loss

    G_frozen = load_generator(generator, device=device)
    uses_slot = CLASS_SLOT in f"{source_text} {target_text}" and not style_images
    classes, known_names = check_classes(generator, G_frozen, classes, class_names, uses_slot=uses_slot)
    names = known_names if uses_slot else None  # per-class texts only where a prompt asks for them
    G_train = copy.deepcopy(G_frozen)
    if direction_floor is None:
        direction_floor = start_floor(G_frozen, noise)
        if direction_floor != OFFICIAL_FLOOR:
            log(f"direction floor {direction_floor:g}: both generators start equal here (ΔI = 0 at the first step: "
                + ("stored noise)" if noise == "stored" else "this generator has no noise inputs or none of any strength)"))
    if clip_precision == "fp16" and device.type != "cuda":
        raise NadaError(f"--clip-precision fp16 needs a CUDA GPU, and this run is on {device}; use fp32, or auto "
                        f"(float16 on a GPU, float32 elsewhere, as the official code)")
    half = clip_precision == "fp16" or (clip_precision == "auto" and device.type == "cuda")
    guide = ClipGuide([(name, load_clip(name, device=device), w) for name, w in zip(clip_models, clip_weights)],
                      resize=clip_resize, half=half, floor=direction_floor)
    if style_images:
        style = load_image_folder(style_images, G_frozen.img_resolution).to(device)
        with torch.no_grad():
            # Reference images of the source domain: G_frozen samples from fixed seeds.
            z = z_from_seeds(range(max(8, len(style))), G_frozen.z_dim).to(device)
            frozen = G_frozen(z, class_input(G_frozen, cycle_classes(classes, len(z)), device), noise_mode="const")
        directions = guide.image_directions(style, frozen)
        targets = guide.image_targets(style)
        log(f"image-guided direction from {len(style)} images in {style_images}")
    else:
        directions = guide.text_directions(source_text, target_text, templates=templates, class_names=names)
        targets = guide.text_targets(target_text, templates=templates, class_names=names)
    # The official code's auto selection pushes W+ towards the bare target text, whatever the direction uses.
    selection = guide.text_targets(target_text, templates=False, class_names=names) \
        if selection_text == "bare" and not style_images else targets
    if names is not None:  # auto/gradnorm pick layers for the whole batch: per-class targets are averaged into one
        selection = [torch.nn.functional.normalize(t.mean(0), dim=-1) for t in selection]
    identity = None
    if id_weight > 0:
        identity, message = load_identity_loss(device=device)
        log(message)
    return Setup(G_frozen, G_train, guide, directions, targets, identity, selection, classes, known_names)


def start_floor(G, noise: str) -> float:
    """The directional loss's floor on |ΔI| for a run with this generator and noise (`losses.DIRECTION_FLOOR`
    where the first step has ΔI = 0: stored noise, or no noise input with a non-zero strength; else the
    official code's none)."""
    from nada_utils.adapt.freezing import is_noise_strength

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


def setup_from_config(cfg: TrainConfig, device: torch.device, *, log: Callable[[str], None] = lambda _: None,
                      judges: tuple[str, ...] | None = None) -> Setup:
    """`build_setup` for a run's config. `judges`: score with these CLIP models instead (equal
    weights, no identity loss), as `evaluate --clip` does."""
    clip_models, weights = (cfg.clip_models, cfg.clip_weights) if judges is None else (judges, (1.0,) * len(judges))
    setup = build_setup(generator=cfg.generator, clip_models=clip_models, clip_weights=weights,
                       source_text=cfg.source_text, target_text=cfg.target_text, templates=cfg.templates,
                       style_images=cfg.style_images, id_weight=cfg.id_weight if judges is None else 0.0,
                       device=device, log=log, clip_precision=cfg.clip_precision, clip_resize=cfg.clip_resize,
                       selection_text=cfg.selection_text, direction_floor=cfg.direction_floor, noise=cfg.noise,
                       classes=cfg.classes, class_names=cfg.class_names)
    return setup


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


def write_samples(run_dir: Path, step: int, G_frozen, G_train, *, n: int, truncation: float, device,
                  classes: list[int] | None = None, class_names: list[str] | None = None) -> Path:
    """Grid for fixed seeds 0..n-1: top row G_frozen, bottom row G_train (same z, same noise); for a
    conditional generator, column i shows class `classes[i % len(classes)]`, named above it."""
    z = z_from_seeds(range(n), G_frozen.z_dim).to(device)
    labels = cycle_classes(classes, n)
    c = class_input(G_frozen, labels, device)
    with torch.no_grad():
        rows = torch.cat([G_frozen(z, c, truncation_psi=truncation), G_train(z, c, truncation_psi=truncation)])
    names = None if labels is None else [class_names[k] if class_names else f"class {k}" for k in labels.tolist()]
    return save_image(image_grid(rows.cpu(), nrow=n, column_labels=names), run_dir / "samples" / f"step_{step:06d}.png")


def train(cfg: TrainConfig | None, run_dir, *, resume: bool = False, overrides: dict | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None, on_save: Callable[[Path], None] | None = None,
          sync_dir=None, sync_retries: int = 3, sync_backoff: float = 1.0) -> Path:
    """Run (or resume) NADA training into `run_dir`; return the path of the exported `generator.pt`.

    Args:
        cfg: the run's config; when resuming, None (the saved one is used) or the settings wanted now.
        resume: continue from the newest checkpoint in run_dir; a `cfg` given with it is what the user
            wants now, so its settings are checked against the saved run like `overrides`.
        overrides: settings the user gave explicitly on resume (only steps and output cadence may change).
        progress: show a tqdm progress bar.
        log: where status lines go (default: printed above the progress bar).
        on_save: called with the path of every file the run finishes writing.
        sync_dir: a mirror folder (e.g. on Google Drive): finished files are copied there in the
            background, and a resume restores from it when the local run dir is missing or older.
        sync_retries, sync_backoff: attempts per mirrored file, and the first wait between them (s).
    """
    from tqdm.auto import tqdm

    log = log or tqdm.write
    run_dir = Path(run_dir)
    with run_lock(run_dir):
        try:
            return _open_and_train(cfg, run_dir, resume=resume, overrides=overrides, progress=progress, log=log,
                                   tqdm=tqdm, on_save=on_save, sync_dir=sync_dir, sync_retries=sync_retries,
                                   sync_backoff=sync_backoff)
        except NadaError:
            # A new run refused before its first checkpoint (a bad model name, a loss that became NaN
            # at once) leaves nothing behind: the corrected command starts cleanly in the same place.
            if not resume and not has_results(run_dir):
                clear_failed_start(run_dir)
            raise


def _open_and_train(cfg, run_dir: Path, *, resume, overrides, progress, log, tqdm, on_save, sync_dir, sync_retries,
                    sync_backoff) -> Path:
    """`train` once RUN_DIR is locked: restore from the mirror, open the run dir, train, mirror."""
    mirror = None
    if sync_dir is not None:
        from drive_sync.mirror import RunMirror, check_new_mirror, restore_run

        if Path(sync_dir).exists() and not Path(sync_dir).is_dir():
            raise NadaError(f"sync dir {sync_dir} is a file; give a folder (e.g. on the mounted Drive) for the mirror")
        if resume:
            restore_run(sync_dir, run_dir, log=log)
        else:
            check_new_mirror(sync_dir)
    if resume and cfg is not None:
        overrides, cfg = {**cfg.to_dict(), **(overrides or {})}, None
    cfg, ckpt_path = open_run(run_dir, cfg, resume=resume, overrides=overrides)
    if sync_dir is not None:
        mirror = RunMirror(run_dir, sync_dir, keep=cfg.keep, retries=sync_retries, backoff=sync_backoff, log=log)
    try:
        return _train(cfg, run_dir, ckpt_path, progress=progress, log=log, tqdm=tqdm,
                      on_save=_chain(on_save, mirror.push if mirror else None))
    finally:
        if mirror is not None:
            mirror.close()


def _chain(*callbacks):
    callbacks = [c for c in callbacks if c is not None]

    def call(path: Path) -> None:
        for c in callbacks:
            c(path)

    return call


def _train(cfg: TrainConfig, run_dir: Path, ckpt_path: Path | None, *, progress: bool, log, tqdm, on_save) -> Path:
    """The loop of `train`, on a prepared run dir."""
    saved = on_save
    saved(run_dir / "config.json")
    device = resolve_device(cfg.device)
    if device.type == "cpu":
        tune_cpu_allocator()
    setup = setup_from_config(cfg, device, log=log)
    G_frozen, G_train, guide = setup.G_frozen, setup.G_train, setup.guide
    fast = parse_fast(cfg.fast, device)
    prepare_fast(setup, fast)
    if fast:
        log(f"fast paths: {', '.join(fast)}")

    spec, candidates, optimizer = layer_plan(G_train, cfg)
    selected = list(candidates)
    selected_ws: list[int] = []
    train_mapping = "mapping" in candidates
    sampler = torch.Generator().manual_seed(cfg.seed)
    directions = setup.directions
    start = 0
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path)
        G_train.load_state_dict(state["G_train"])
        optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"], sampler)
        directions = [d.to(device) for d in state["directions"]]
        selected, selected_ws = list(state["selected_layers"]), list(state["selected_ws"])
        start = int(state["step"])
        log(f"resumed {run_dir} at step {start} from {ckpt_path.name}")
    truncate_log(run_dir, start)
    set_trainable(G_train, selected, freeze_noise=cfg.freeze_noise)

    evaluator = None
    if cfg.eval_samples:
        from nada_utils.measure.evaluation import Evaluator

        evaluator = Evaluator(G_frozen, guide, directions, setup.global_targets, n=cfg.eval_samples,
                              ground_truth=cfg.ground_truth, classes=setup.classes)

    def evaluate(step: int) -> set[int]:
        """Score G_train now (written to eval.jsonl); return the step of the best checkpoint so far."""
        if evaluator is None:
            return set()
        with open(run_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **evaluator(G_train)}) + "\n")
        saved(run_dir / "eval.jsonl")
        return {best_step(read_evals(run_dir))[0]}

    def diverged(what: str, step: int) -> NadaError:
        bar.close()
        if last_good:
            keep = (f"the last good checkpoint is {last_good} (generate --checkpoint renders it); lower --lr "
                    f"(now {cfg.lr:g}) and start a new run with another --out")
        else:
            keep = f"no checkpoint was written; run the same command again with a lower --lr (now {cfg.lr:g})"
        return NadaError(f"{what} at step {step}; {keep}")

    def checkpoint(step: int) -> Path:
        # A finite loss does not prove finite weights (an overflowing update); a checkpoint must be usable.
        if not torch.stack([torch.isfinite(p).all() for p in G_train.parameters()]).all():
            raise diverged("the weights became nan or inf", step)
        best = evaluate(step)
        saved(run_dir / "log.jsonl")  # the mirror gets the log with each checkpoint; resume trims it to the step
        path = save_checkpoint(run_dir, {
            "step": step, "G_train": {k: v.detach().cpu() for k, v in G_train.state_dict().items()},
            "latent_avg": G_train.w_avg.detach().cpu(), "arch": G_train.arch,
            "optimizer": optimizer.state_dict(), "rng": rng_state(sampler), "config": cfg.to_dict(),
            "directions": [d.detach().cpu() for d in directions], "selected_layers": selected, "selected_ws": selected_ws,
        }, keep=cfg.keep, protect=best)
        saved(path)
        return path

    def samples(step: int) -> None:
        saved(write_samples(run_dir, step, G_frozen, G_train, n=cfg.n_samples, truncation=cfg.sample_truncation,
                            device=device, classes=setup.classes, class_names=setup.class_names))

    def global_loss(images):
        return guide.global_(images, setup.selection_targets or setup.global_targets)

    if start == 0:
        samples(0)
    last_good = ckpt_path
    settings = StepSettings(truncation=cfg.truncation, train_mapping=train_mapping, l2_weight=cfg.l2_weight,
                            id_weight=cfg.id_weight if setup.identity is not None else 0.0, fast=fast)
    noise_sizes = [tuple(b.shape[2:]) for b in G_frozen.make_noise(1, "const")] if cfg.noise == "random" else None
    bar = tqdm(total=cfg.steps, initial=start, disable=not progress, desc="nada", unit="step")
    for it in range(start, cfg.steps):
        t0 = time.perf_counter()
        latents = sample_latents(sampler, cfg.batch, z_dim=G_frozen.z_dim, num_ws=G_frozen.num_ws, mixing=cfg.mixing,
                                 device=device, noise_sizes=noise_sizes,
                                 independent_cutoff=cfg.mixing_cutoff == "independent", classes=setup.classes)
        if spec.dynamic and it % cfg.auto_every == 0:
            def auto_latents():
                with torch.no_grad():
                    return sample_latents(sampler, cfg.auto_batch, z_dim=G_frozen.z_dim, num_ws=G_frozen.num_ws,
                                          mixing=0.0, device=device, classes=setup.classes).ws(G_frozen, cfg.truncation)

            with torch.no_grad():
                ws = latents.ws(G_frozen, cfg.truncation)
            with precision(fast):
                selected_ws, selected = select_layers(spec, G_train, ws, auto_latents, global_loss, candidates=candidates,
                                                      iters=cfg.auto_iters, lr=cfg.auto_lr, include_torgb=cfg.include_torgb)
            set_trainable(G_train, selected, freeze_noise=cfg.freeze_noise)
        loss, terms = backward_step(setup, optimizer, latents, directions, settings, device)
        if not torch.isfinite(loss):  # the one read-back of the step, after its backward was queued
            raise diverged(f"loss became {loss.item()}", it + 1)
        optimizer.step()
        record = {"step": it + 1, **as_floats(terms), "loss": loss.item()}
        record["seconds"] = round(time.perf_counter() - t0, 4)
        if spec.dynamic:
            record["layers"] = list(selected)
            if spec.kind in ("auto", "auto-official"):
                record["ws_indices"] = list(selected_ws)
        with open(run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        step = it + 1
        bar.update(1)
        bar.set_postfix(loss=f"{record['loss']:.4f}")
        if cfg.sample_every and step % cfg.sample_every == 0 and step != cfg.steps:
            samples(step)
        if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
            last_good = checkpoint(step)
    bar.close()
    if start < cfg.steps:
        samples(cfg.steps)
        checkpoint(cfg.steps)
    if evaluator is not None:
        for path in write_evaluation(run_dir, read_evals(run_dir), checkpoints=checkpoint_dir(run_dir),
                                     judge=list(cfg.clip_models))[1]:
            saved(path)
    if cfg.ground_truth:
        from nada_utils.measure.ground_truth import evaluate_ground_truth

        metrics = evaluate_ground_truth(cfg.ground_truth, G_frozen, G_train, setup.classes)
        saved(atomic_write_text(run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n"))
        log("ground truth: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
    out = save_generator(G_train, run_dir / "generator.pt")
    saved(out)
    return out
