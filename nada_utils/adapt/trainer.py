"""The NADA training loop: twin generators, directional CLIP loss, layer selection, exact resume.

`train(cfg, run_dir)` is the one entry point (the CLI, the notebooks and studies call it). Each step
samples z from the run's own seeded sampler (`latents.py`), renders it with G_frozen (no grad) and
G_train, and moves G_train's selected layers so that the CLIP image direction follows the text
direction. Checkpoints hold all state, so a run killed at any moment and resumed ends with the same
weights, bit for bit, as one that never stopped.

The trainer writes only into its run dir. Whoever wants the files elsewhere (a Google Drive mirror, a
live preview) passes `on_save`, called with each file the run finishes writing.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import torch

from nada_utils.adapt.checkpoint import checkpoint_dir, load_checkpoint, restore_rng, rng_state, save_checkpoint
from nada_utils.adapt.checks import check_config
from nada_utils.adapt.config import TrainConfig
from nada_utils.adapt.freezing import set_trainable
from nada_utils.adapt.latents import Latents, sample_latents
from nada_utils.adapt.run_dir import clear_failed_start, has_results, open_run, read_evals, run_lock, truncate_log
from nada_utils.adapt.selection import select_layers
from nada_utils.adapt.setup import build_setup, layer_plan
from nada_utils.adapt.training_step import StepSettings, as_floats, backward_step, parse_fast, precision, prepare_fast
from nada_utils.devices import resolve_device, tune_cpu_allocator
from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_write_text
from nada_utils.images import image_grid, save_image
from nada_utils.measure.evaluation import best_step, write_evaluation
from nada_utils.models.generator_io import save_generator
from nada_utils.models.rendering import class_input, cycle_classes
from nada_utils.models.stylegan2 import z_from_seeds


def train(cfg: TrainConfig | None, run_dir, *, resume: bool = False, overrides: dict | None = None, progress: bool = True,
          log: Callable[[str], None] | None = None, on_save: Callable[[Path], None] | None = None) -> Path:
    """Run (or resume) NADA training into `run_dir`; return the path of the exported `generator.pt`.

    Args:
        cfg: the run's config; when resuming, None (the saved one is used) or the settings wanted now.
        resume: continue from the newest checkpoint in run_dir; a `cfg` given with it is what the user
            wants now, so its settings are checked against the saved run like `overrides`.
        overrides: settings the user gave explicitly on resume (only steps and output cadence may change).
        progress: show a tqdm progress bar.
        log: where status lines go (default: printed above the progress bar).
        on_save: called with the path of every file the run finishes writing (`drive_sync.mirrored`
            gives one that mirrors the run to Google Drive).
    """
    from tqdm.auto import tqdm

    run_dir = Path(run_dir)
    if resume and cfg is not None:
        overrides, cfg = {**cfg.to_dict(), **(overrides or {})}, None
    with run_lock(run_dir):
        try:
            cfg, ckpt_path = open_run(run_dir, cfg, resume=resume, overrides=overrides, check=check_config)
            run = Run(cfg, run_dir, ckpt_path, log=log or tqdm.write, on_save=on_save or (lambda _: None))
            return run.train(progress=progress)
        except NadaError:
            # A new run refused before its first checkpoint (a bad model name, a loss that became NaN
            # at once) leaves nothing behind: the corrected command starts cleanly in the same place.
            if not resume and not has_results(run_dir):
                clear_failed_start(run_dir)
            raise


class Run:
    """One run on an opened run dir: built from its config (and checkpoint), then `train()` to the end."""

    def __init__(self, cfg: TrainConfig, run_dir: Path, ckpt_path: Path | None, *, log: Callable[[str], None],
                 on_save: Callable[[Path], None]):
        self.cfg, self.run_dir, self.log, self.saved = cfg, run_dir, log, on_save
        self.saved(run_dir / "config.json")
        self.device = resolve_device(cfg.device)
        if self.device.type == "cpu":
            tune_cpu_allocator()
        self.setup = setup = build_setup(cfg, self.device, log=log)
        self.fast = parse_fast(cfg.fast, self.device)
        prepare_fast(setup, self.fast)
        if self.fast:
            log(f"fast paths: {', '.join(self.fast)}")
        self.spec, self.candidates, self.optimizer = layer_plan(setup.G_train, cfg)
        self.selected, self.selected_ws = list(self.candidates), []
        self.sampler = torch.Generator().manual_seed(cfg.seed)
        self.directions = setup.directions
        self.start, self.last_good = 0, ckpt_path
        if ckpt_path is not None:
            self._restore(ckpt_path)
        truncate_log(run_dir, self.start)
        set_trainable(setup.G_train, self.selected, freeze_noise=cfg.freeze_noise)
        self.evaluator = None
        if cfg.eval_samples:
            from nada_utils.measure.evaluation import Evaluator

            self.evaluator = Evaluator(setup.G_frozen, setup.guide, self.directions, setup.global_targets,
                                       n=cfg.eval_samples, ground_truth=cfg.ground_truth, classes=setup.classes)
        self.settings = StepSettings(truncation=cfg.truncation, train_mapping="mapping" in self.candidates,
                                     l2_weight=cfg.l2_weight, id_weight=cfg.id_weight if setup.identity is not None else 0.0,
                                     fast=self.fast)
        G = setup.G_frozen
        self.noise_sizes = [tuple(b.shape[2:]) for b in G.make_noise(1, "const")] if cfg.noise == "random" else None
        self.bar = None

    def _restore(self, ckpt_path: Path) -> None:
        state = load_checkpoint(ckpt_path)
        self.setup.G_train.load_state_dict(state["G_train"])
        self.optimizer.load_state_dict(state["optimizer"])
        restore_rng(state["rng"], self.sampler)
        self.directions = [d.to(self.device) for d in state["directions"]]
        self.selected, self.selected_ws = list(state["selected_layers"]), list(state["selected_ws"])
        self.start = int(state["step"])
        self.log(f"resumed {self.run_dir} at step {self.start} from {ckpt_path.name}")

    def train(self, *, progress: bool = True) -> Path:
        """Step from the start (or the checkpoint) to cfg.steps, writing grids and checkpoints on the way;
        then score the run and export its generator."""
        from tqdm.auto import tqdm

        cfg = self.cfg
        if self.start == 0:
            self.write_samples(0)
        self.bar = tqdm(total=cfg.steps, initial=self.start, disable=not progress, desc="nada", unit="step")
        for it in range(self.start, cfg.steps):
            record = self.step(it)
            step = it + 1
            self.bar.update(1)
            self.bar.set_postfix(loss=f"{record['loss']:.4f}")
            if cfg.sample_every and step % cfg.sample_every == 0 and step != cfg.steps:
                self.write_samples(step)
            if cfg.checkpoint_every and step % cfg.checkpoint_every == 0 and step != cfg.steps:
                self.last_good = self.checkpoint(step)
        self.bar.close()
        if self.start < cfg.steps:
            self.write_samples(cfg.steps)
            self.checkpoint(cfg.steps)
        return self.finish()

    def step(self, it: int) -> dict:
        """Training step `it` (0-based): latents, the layers to train, loss, update; the record logged."""
        cfg, G = self.cfg, self.setup.G_frozen
        t0 = time.perf_counter()
        latents = sample_latents(self.sampler, cfg.batch, z_dim=G.z_dim, num_ws=G.num_ws, mixing=cfg.mixing,
                                 device=self.device, noise_sizes=self.noise_sizes,
                                 independent_cutoff=cfg.mixing_cutoff == "independent", classes=self.setup.classes)
        if self.spec.dynamic and it % cfg.auto_every == 0:
            self.reselect_layers(latents)
        loss, terms = backward_step(self.setup, self.optimizer, latents, self.directions, self.settings, self.device)
        if not torch.isfinite(loss):  # the one read-back of the step, after its backward was queued
            raise self.diverged(f"loss became {loss.item()}", it + 1)
        self.optimizer.step()
        record = {"step": it + 1, **as_floats(terms), "loss": loss.item()}
        record["seconds"] = round(time.perf_counter() - t0, 4)
        if self.spec.dynamic:
            record["layers"] = list(self.selected)
            if self.spec.kind in ("auto", "auto-official"):
                record["ws_indices"] = list(self.selected_ws)
        with open(self.run_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")
        return record

    def reselect_layers(self, latents: Latents) -> None:
        """auto / gradnorm: choose this step's layers (the paper's W+ optimisation, or gradient norms)."""
        cfg, setup, G = self.cfg, self.setup, self.setup.G_frozen

        def auto_latents():
            with torch.no_grad():
                return sample_latents(self.sampler, cfg.auto_batch, z_dim=G.z_dim, num_ws=G.num_ws, mixing=0.0,
                                      device=self.device, classes=setup.classes).ws(G, cfg.truncation)

        def global_loss(images):
            return setup.guide.global_(images, setup.selection_targets or setup.global_targets)

        with torch.no_grad():
            ws = latents.ws(G, cfg.truncation)
        with precision(self.fast):
            self.selected_ws, self.selected = select_layers(
                self.spec, setup.G_train, ws, auto_latents, global_loss, candidates=self.candidates,
                iters=cfg.auto_iters, lr=cfg.auto_lr, include_torgb=cfg.include_torgb)
        set_trainable(setup.G_train, self.selected, freeze_noise=cfg.freeze_noise)

    def diverged(self, what: str, step: int) -> NadaError:
        """The error for a run whose loss or weights stopped being finite, naming what to do instead."""
        if self.bar is not None:
            self.bar.close()
        lr = self.cfg.lr
        if self.last_good:
            keep = (f"the last good checkpoint is {self.last_good} (generate --checkpoint renders it); lower --lr "
                    f"(now {lr:g}) and start a new run with another --out")
        else:
            keep = f"no checkpoint was written; run the same command again with a lower --lr (now {lr:g})"
        return NadaError(f"{what} at step {step}; {keep}")

    def evaluate(self, step: int) -> set[int]:
        """Score G_train now (written to eval.jsonl); return the step of the checkpoint to keep so far."""
        if self.evaluator is None:
            return set()
        with open(self.run_dir / "eval.jsonl", "a") as f:
            f.write(json.dumps({"step": step, **self.evaluator(self.setup.G_train)}) + "\n")
        self.saved(self.run_dir / "eval.jsonl")
        return {best_step(read_evals(self.run_dir))[0]}

    def checkpoint(self, step: int) -> Path:
        """Write a checkpoint with everything a resume needs (and the evaluation that goes with it)."""
        G_train = self.setup.G_train
        # A finite loss does not prove finite weights (an overflowing update); a checkpoint must be usable.
        if not torch.stack([torch.isfinite(p).all() for p in G_train.parameters()]).all():
            raise self.diverged("the weights became nan or inf", step)
        best = self.evaluate(step)
        self.saved(self.run_dir / "log.jsonl")  # the mirror gets the log with each checkpoint; resume trims it
        path = save_checkpoint(self.run_dir, {
            "step": step, "G_train": {k: v.detach().cpu() for k, v in G_train.state_dict().items()},
            "latent_avg": G_train.w_avg.detach().cpu(), "arch": G_train.arch,
            "optimizer": self.optimizer.state_dict(), "rng": rng_state(self.sampler), "config": self.cfg.to_dict(),
            "directions": [d.detach().cpu() for d in self.directions], "selected_layers": self.selected,
            "selected_ws": self.selected_ws,
        }, keep=self.cfg.keep, protect=best)
        self.saved(path)
        return path

    def write_samples(self, step: int) -> None:
        setup = self.setup
        self.saved(write_samples(self.run_dir, step, setup.G_frozen, setup.G_train, n=self.cfg.n_samples,
                                 truncation=self.cfg.sample_truncation, device=self.device, classes=setup.classes,
                                 class_names=setup.class_names))

    def finish(self) -> Path:
        """The run's evaluation summary, its ground-truth metrics (mini world) and the exported generator."""
        cfg, setup = self.cfg, self.setup
        if self.evaluator is not None:
            for path in write_evaluation(self.run_dir, read_evals(self.run_dir), checkpoints=checkpoint_dir(self.run_dir),
                                         judge=list(cfg.clip_models))[1]:
                self.saved(path)
        if cfg.ground_truth:
            from nada_utils.measure.ground_truth import evaluate_ground_truth

            metrics = evaluate_ground_truth(cfg.ground_truth, setup.G_frozen, setup.G_train, setup.classes)
            self.saved(atomic_write_text(self.run_dir / "metrics.json", json.dumps(metrics, indent=2) + "\n"))
            self.log("ground truth: " + ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float)))
        out = save_generator(setup.G_train, self.run_dir / "generator.pt")
        self.saved(out)
        return out


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
