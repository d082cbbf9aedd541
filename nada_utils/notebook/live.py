"""Training from a notebook: the trainer plus live frozen-vs-trained grids, resume and export.

`train_live(cfg, name, session)` runs `trainer.train` into `session.run_dir(name)`, mirrored to
Drive when the session has a mirror. Running the cell again after a disconnect (or on a fresh VM)
resumes the same run: from the local run dir, or from the Drive mirror when the VM was wiped.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from drive_sync.mirror import mirrored
from nada_utils.adapt.config import TrainConfig, make_config
from nada_utils.adapt.run_dir import check_resume, has_results, is_finished, read_config, run_exists
from nada_utils.errors import NadaError
from nada_utils.notebook.session import Session, fast_mode


@dataclass
class RunResult:
    name: str
    run_dir: Path
    generator: Path  # the adapted generator: rosinality .pt (StyleGAN2), NVlabs names + arch (StyleGAN3)


def train_live(cfg: TrainConfig, name: str, session: Session, *, show: bool = True) -> RunResult:
    """Train (or resume) run `name` with `cfg`; with `show`, the newest sample grid is displayed as it is written."""
    from nada_utils.adapt.trainer import train

    if not name or "/" in name or name.startswith("."):
        raise NadaError(f"bad run name {name!r}; use a plain folder name like 'sketch'")
    run_dir, sync_dir = session.run_dir(name), session.sync_dir(name)
    resume = run_exists(run_dir, sync_dir)
    if has_results(run_dir):
        try:
            check_resume(read_config(run_dir), cfg)
        except NadaError as e:
            raise NadaError(f"run {name!r} already exists with other settings ({e}); choose another run name, "
                            f"or set them back to continue it") from None
    preview = _live_preview(name) if show else None
    print(("resuming" if resume else "starting") + f" run {name!r} in {run_dir}")
    with mirrored(run_dir, sync_dir, resume=resume) as mirror:
        generator = train(cfg, run_dir, resume=resume, on_save=_both(preview, mirror))
    return RunResult(name, run_dir, generator)


def run_study(base: TrainConfig, strategies, root, **kwargs) -> list[dict]:
    """`experiments.study.run_study`, each run mirrored to Drive when `sync_root` is given."""
    from nada_utils.experiments.study import run_study as study

    return study(base, strategies, root, mirror=mirrored, **kwargs)


def _both(*callbacks):
    """One `on_save` that calls each of `callbacks` (None ones left out) in turn."""
    callbacks = [c for c in callbacks if c is not None]

    def on_save(path: Path) -> None:
        for c in callbacks:
            c(path)

    return on_save


def _live_preview(name: str):
    """A display that shows each new sample grid in place; returns the trainer's on_save callback."""
    from IPython.display import HTML, Image, display

    caption = display(HTML(f"<b>{name}</b>: waiting for the first grid (top row G_frozen, bottom row G_train)"),
                      display_id=True)
    picture = display(HTML(""), display_id=True)

    def on_save(path: Path) -> None:
        if path.parent.name == "samples" and path.suffix == ".png":
            step = int(path.stem.split("_")[-1])
            caption.update(HTML(f"<b>{name}</b>, step {step}: top row G_frozen, bottom row G_train (same seeds)"))
            picture.update(Image(filename=str(path)))

    return on_save


def quick_run(session: Session, *, preset: str = "mini-sketch", steps: int | None = None) -> RunResult:
    """An offline mini-world run to look at when no adapted generator exists yet (reused once finished).

    The preset's own budget (mini-sketch: 400 steps, one to three minutes on a laptop CPU) is where
    its sketch is measured (docs/MINI_WORLD.md). In fast mode (CI) 100 steps, whose outlines have
    only begun: enough to exercise every cell.
    """
    steps = steps or (100 if fast_mode() else None)
    cfg = make_config(preset, steps=steps, sample_every=0, checkpoint_every=0)
    name = f"{preset}-{cfg.steps}"
    run_dir = session.run_dir(name)
    if is_finished(run_dir, cfg.steps):
        print(f"using the finished run {run_dir}")
        return RunResult(name, run_dir, run_dir / "generator.pt")
    return train_live(cfg, name, session, show=False)


def show_losses(run: RunResult) -> None:
    """Plot the run's loss per step (written to RUN_DIR/loss.png) and display it."""
    from IPython.display import Image, display

    from nada_utils.adapt.run_dir import read_log
    from nada_utils.measure.plots import plot_losses

    path = plot_losses(read_log(run.run_dir), run.run_dir / "loss.png", title=run.run_dir.name)
    display(Image(filename=str(path)))


def show_evaluation(run: RunResult) -> dict:
    """Show every checkpoint's metrics (RUN_DIR/evaluation.png), their table, and the checkpoint to keep."""
    from IPython.display import Image, display

    from nada_utils.adapt.checkpoint import checkpoint_dir
    from nada_utils.adapt.run_dir import read_evals
    from nada_utils.measure.evaluation import evaluation_summary, evaluation_table

    rows = read_evals(run.run_dir)
    if not rows:
        print("this run has no evaluations (eval_samples was 0); run: python -m nada_utils evaluate --run "
              f"{run.run_dir}")
        return {}
    summary = evaluation_summary(rows, checkpoint_dir(run.run_dir))
    if (run.run_dir / "evaluation.png").is_file():
        display(Image(filename=str(run.run_dir / "evaluation.png")))
    best = summary["best"]
    print(evaluation_table(rows, best["step"]))
    print(f"\nkeep step {best['step']}: {best['why']}")
    if best.get("checkpoint"):
        print(f"  {best['checkpoint']}  (load_generator() and `generate --checkpoint` take it)")
    return summary


def export_generator(run: RunResult, session: Session, *, download: bool = False) -> Path:
    """Copy the adapted generator to `exports/NAME.pt` (on Drive when mirrored); in Colab, optionally download it."""
    import torch

    from nada_utils.fileio import copy_atomic
    from nada_utils.models.stylegan3_io import is_stylegan3_checkpoint

    dest = copy_atomic(run.generator, session.exports / f"{run.name}.pt")
    print(f"exported {dest} ({dest.stat().st_size / 1e6:.1f} MB): load_generator('{dest}'), or "
          f"python -m nada_utils generate --checkpoint {dest} --out images/")
    if is_stylegan3_checkpoint(torch.load(dest, map_location="cpu", weights_only=True, mmap=True)):
        print("  a StyleGAN3: NVlabs' Generator(**ckpt['nada']['arch']) loads ckpt['G_ema'] (docs/STYLEGAN3.md)")
    if download and session.in_colab:
        from google.colab import files

        files.download(str(dest))
    return dest
