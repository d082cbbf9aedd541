"""Commands that adapt and measure: `train`, `study`, `evaluate`, `bench`."""

from __future__ import annotations

import json
from pathlib import Path

from nada_utils.adapt.config import DEPARTURES, PRESETS
from nada_utils.cli.args import names
from nada_utils.cli.config_flags import add_config_flags, config_overrides
from nada_utils.errors import NadaError


def cmd_train(args) -> int:
    from drive_sync.mirror import mirrored
    from nada_utils.adapt.config import config_settings, make_config
    from nada_utils.adapt.trainer import train

    explicit = config_overrides(args)
    if "clip_models" in explicit and "clip_weights" not in explicit:  # other CLIPs than the preset's: weigh them equally
        explicit["clip_weights"] = (1.0,) * len(explicit["clip_models"])
    if args.resume and args.preset and args.preset not in PRESETS:
        raise NadaError(f"unknown preset {args.preset!r}; use one of {', '.join(PRESETS)}")
    with mirrored(args.out, args.sync_dir, resume=args.resume) as on_save:
        if args.resume:
            # Re-running the same command with --resume must work: its settings equal the saved ones.
            overrides = config_settings(args.preset, reference=args.reference, **explicit)
            overrides.pop("extras", None)
            out = train(None, args.out, resume=True, overrides=overrides, progress=not args.quiet, on_save=on_save)
        else:
            out = train(make_config(args.preset, reference=args.reference, **explicit), args.out,
                        progress=not args.quiet, on_save=on_save)
    print(f"wrote {out}; samples in {Path(args.out) / 'samples'}, log in {Path(args.out) / 'log.jsonl'}")
    return 0


def cmd_study(args) -> int:
    from nada_utils.adapt.config import make_config
    from nada_utils.experiments.study import (
        class_names_of,
        class_study_table,
        export_results,
        run_study,
        study_strategies,
        study_table,
        write_study,
    )

    from nada_utils.models.rendering import parse_seeds

    out = Path(args.out)
    seeds = parse_seeds(args.seeds) if args.seeds else None
    # With --reference, each preset's runs go beside its own, to OUT/PRESET-reference/.
    configs = [(preset + ("-reference" if args.reference else ""),
                make_config(preset, reference=args.reference, steps=args.steps, device=args.device))
               for preset in args.preset]
    for preset, base in configs:
        specs = args.layers or study_strategies(base)
        title = f"{preset}, {base.steps} steps" + (f", seeds {args.seeds}" if seeds else "")
        rows = run_study(base, specs, out / preset, seeds=seeds, jobs=args.jobs, threads=args.threads,
                         progress=not args.quiet)
        names = class_names_of(base)
        write_study(rows, out / preset, title=title, class_names=names)
        per_class = class_study_table(rows, names=names)
        print(f"\n{title}\n{study_table(rows)}\n" + (f"\nper class (clip_gain):\n{per_class}\n" if per_class else "")
              + f"(table, rows and plot in {out / preset})")
        if args.results:
            export_results(rows, Path(args.results) / preset)
            write_study(rows, Path(args.results) / preset, title=title, paths=False, class_names=names)
            print(f"final grids, metrics and configs copied to {Path(args.results) / preset}")
    return 0


def cmd_evaluate(args) -> int:
    from tqdm.auto import tqdm

    from nada_utils.adapt.checkpoint import checkpoint_dir, list_checkpoints
    from nada_utils.adapt.run_dir import adapted_generator_path, holds_run, read_config, read_evals
    from nada_utils.adapt.setup import build_setup
    from nada_utils.devices import resolve_device
    from nada_utils.measure.evaluation import Evaluator, class_table, evaluation_table, write_evaluation
    from nada_utils.models.generator_io import load_generator

    run_dir = Path(args.run)
    if not holds_run(run_dir):
        raise NadaError(f"{run_dir} is not a run directory (no config.json or checkpoints); pass the --out of a train run")
    cfg = read_config(run_dir)
    n = args.n if args.n is not None else cfg.eval_samples or 32
    if n < 2:
        raise NadaError(f"--n must be >= 2 (diversity compares pairs), got {n}")
    clip = names(args.clip, "--clip") or tuple(cfg.clip_models)
    own_judge = clip == tuple(cfg.clip_models) and not args.faces
    checkpoints = list_checkpoints(run_dir)
    if args.checkpoint is None and not checkpoints:
        raise NadaError(f"{run_dir} has no checkpoints yet; evaluate once training has written one")
    if args.faces:
        from nada_utils.measure.face_descriptors import load_face_models

        load_face_models()  # a missing extra fails here, before the models load
    device = resolve_device(args.device)
    setup = build_setup(cfg, device, judges=clip)
    evaluator = Evaluator(setup.G_frozen, setup.guide, setup.directions, setup.global_targets, n=n, faces=args.faces,
                          ground_truth=cfg.ground_truth, classes=setup.classes)
    if args.checkpoint:
        path, _ = adapted_generator_path(args.checkpoint)
        row = {"checkpoint": str(path), **evaluator(load_generator(path, device=device))}
        print(json.dumps(row, indent=2) if args.json else "\n".join(f"{k}: {v}" for k, v in row.items()))
        return 0
    # Evaluations written during training are reused when they were made the same way; they are the only
    # record of checkpoints that training has since deleted.
    rows = {r["step"]: r for r in read_evals(run_dir) if own_judge and r.get("n") == n}
    on_disk = [(step, path) for step, path in checkpoints if step not in rows]
    for step, path in tqdm(on_disk, desc="evaluate", unit="checkpoint", disable=args.json):
        rows[step] = {"step": step, **evaluator(load_generator(path, device=device))}
    rows = [rows[s] for s in sorted(rows)]
    summary, written = write_evaluation(run_dir, rows, checkpoints=checkpoint_dir(run_dir), judge=list(clip))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    best = summary["best"]
    print(evaluation_table(rows, best["step"]))
    print(f"\nkeep step {best['step']}: {best['why']}" + (f"\n  {best['checkpoint']}" if best.get("checkpoint") else
                                                         " (that checkpoint was deleted; its evaluation remains)"))
    per_class = class_table(next(r for r in rows if r["step"] == best["step"]))
    if per_class:
        print(f"\nper class at step {best['step']}:\n{per_class}")
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_bench(args) -> int:
    from nada_utils.experiments.bench import format_result, run_bench

    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        raise NadaError("--batch and --steps must be >= 1 and --warmup >= 0")
    clip = names(args.clip, "--clip")
    result = run_bench(size=args.size, batch=args.batch, clip=clip, layers=args.layers, device=args.device, fast=args.fast,
                       steps=args.steps, warmup=args.warmup, arch=args.generator_arch,
                       log=(lambda _: None) if args.json else print)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


def add_commands(sub) -> None:
    """Add this group's subcommands to the parser's `sub`."""
    t = sub.add_parser("train", help="adapt a generator to a text (or style images) with NADA")
    t.add_argument("--out", required=True, help="run directory (never overwritten; see --resume)")
    t.add_argument("--preset", help=f"one of {', '.join(PRESETS)}: tiny (seconds on a CPU, mechanics only), "
                                    "mini-* (the offline mini world), ffhq-sketch (the reference run). A preset's "
                                    "settings replace the defaults shown below, and the flags replace both")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    t.add_argument("--sync-dir", help="mirror the run here (e.g. a Google Drive folder); --resume restores from it")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    departures = t.add_argument_group(DEPARTURES)
    departures.add_argument("--reference", action="store_true", help="run exactly what the official StyleGAN-NADA "
                            "code runs: the defaults below even where a preset departs from them, noise strengths "
                            "trained, and auto:K with its W+ table (auto-official:K)")
    add_config_flags(t, groups={DEPARTURES: departures})
    t.set_defaults(func=cmd_train)

    st = sub.add_parser("study", help="block importance: train a preset once per layer strategy, on the same budget")
    st.add_argument("--preset", nargs="+", required=True, help="one or more presets, e.g. mini-sketch mini-night")
    st.add_argument("--layers", nargs="+", help="layer specs (default: last:K for every K, the phases, all, auto:K, gradnorm:K)")
    st.add_argument("--steps", type=int, help="steps of every run (default: the preset's)")
    st.add_argument("--seeds", help="train every spec once per seed, e.g. 0-7 or 0,3,5: tables of each metric's mean, "
                    "min and spread over seeds, and a plot with bars from the worst seed to the best "
                    "(default: one run per spec, the preset's seed)")
    st.add_argument("--reference", action="store_true", help="the official code's behaviour (as train --reference): "
                    "runs go to OUT/PRESET-reference/, to set beside the preset's own")
    st.add_argument("--jobs", type=int, default=1, help="runs at once, each in its own process (default 1: in this "
                    "process). On a CPU, --jobs N --threads 1 with N cores")
    st.add_argument("--threads", type=int, help="torch threads per run (default: torch's own in this process, 1 per "
                    "job with --jobs > 1)")
    st.add_argument("--out", required=True, help="runs go to OUT/PRESET/SPEC/ (OUT/PRESET/SPEC/seed-N/ with --seeds; reused or resumed when run again); table and plot to OUT/PRESET/")
    st.add_argument("--results", help="also copy each run's final grid, metrics and config to RESULTS/PRESET/SPEC/")
    st.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    st.add_argument("--quiet", action="store_true", help="no progress bars")
    st.set_defaults(func=cmd_study)

    e = sub.add_parser("evaluate", help="score every checkpoint of a run (CLIP metrics, diversity, structure) and pick the one to keep")
    e.add_argument("--run", required=True, help="a train run directory (its --out)")
    e.add_argument("--checkpoint", help="score only this checkpoint or generator .pt (printed, nothing written)")
    e.add_argument("--n", type=int, help="held-out latents (default: the run's eval_samples, 32)")
    e.add_argument("--clip", help="judge CLIP models, comma-separated (default: the run's own; another is a fairer judge)")
    e.add_argument("--faces", action="store_true", help="add dlib face-descriptor distances (needs pip install 'nada[align]')")
    e.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    e.add_argument("--json", action="store_true", help="print the evaluations and the best checkpoint as JSON")
    e.set_defaults(func=cmd_evaluate)

    b = sub.add_parser("bench", help="time a training step at real model sizes (random weights) against the compute floor")
    b.add_argument("--size", type=int, default=256, choices=[32, 64, 128, 256, 512, 1024], help="generator resolution")
    b.add_argument("--generator-arch", default="sg2", choices=["sg2", "sg3-t", "sg3-r"],
                   help="sg2: StyleGAN2 config F (default); sg3-t / sg3-r: StyleGAN3 configs T and R (NVlabs' settings)")
    b.add_argument("--batch", type=int, default=2)
    b.add_argument("--clip", default="ViT-B/32", help="CLIP architectures, comma-separated: ViT-B/32, ViT-B/16, ViT-L/14")
    b.add_argument("--layers", default="all", help="layer spec, as for train (auto:K also times the selection)")
    b.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    b.add_argument("--fast", default="none", help="fast paths to time: none, auto, or a list as for train")
    b.add_argument("--steps", type=int, default=5, help="timed warm steps (the median is reported)")
    b.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    b.add_argument("--json", action="store_true", help="print the full result as JSON")
    b.set_defaults(func=cmd_bench)
