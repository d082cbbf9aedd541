"""Command line: `python -m nada_utils COMMAND ...`.

Every problem a user can cause ends as one `error: ...` line on stderr and exit code 2, without a
traceback; nothing is written before the inputs are checked. The commands are thin wrappers over
library functions, which notebooks call directly.
"""

from __future__ import annotations

import argparse
import errno
import json
import sys
import time
from pathlib import Path

from .errors import NadaError
from .rendering import parse_seeds, render_seeds


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage plus a message; we keep the one-line contract
        raise NadaError(f"{message} (see: python -m nada_utils {self.prog.split()[-1]} --help)")


def cmd_generate(args) -> int:
    import torch

    from . import load_generator
    from .devices import resolve_device
    from .generator_io import adapted_generator_path
    from .images import image_grid, save_image

    if (args.generator is None) == (args.checkpoint is None) and not (args.compare and args.checkpoint):
        raise NadaError("pass --generator (a generator) or --checkpoint (an adapted run, checkpoint or .pt)")
    seeds = parse_seeds(args.seeds)
    device = resolve_device(args.device)
    frozen_source = args.generator
    if args.checkpoint:
        path, run_frozen = adapted_generator_path(args.checkpoint)
        frozen_source = args.generator or run_frozen
        G = load_generator(path, device=device)
    else:
        G = load_generator(args.generator, device=device)
    rows = [render_seeds(G, seeds, truncation_psi=args.truncation, noise_mode=args.noise_mode, class_idx=args.class_idx, device=device)]
    if args.compare:
        if not args.checkpoint or frozen_source is None:
            raise NadaError("--compare needs --checkpoint and the frozen generator (from the run's config.json or --generator)")
        G_frozen = load_generator(frozen_source, device=device)
        rows.insert(0, render_seeds(G_frozen, seeds, truncation_psi=args.truncation, noise_mode=args.noise_mode,
                               class_idx=args.class_idx, device=device))
    images = torch.cat(rows)
    grid = image_grid(images, nrow=len(seeds) if args.compare else None)  # with --compare: frozen row, adapted row
    out = Path(args.out)
    if out.suffix.lower() == ".png":  # one grid image
        save_image(grid, out)
        print(f"wrote a grid of {len(images)} images to {out}")
        return 0
    for seed, img in zip(seeds, rows[-1]):
        save_image(img, out / f"seed{seed:04d}.png")
    save_image(grid, out / "grid.png")
    print(f"wrote {len(seeds)} images and grid.png to {out}")
    return 0


def _floats(text: str | None, flag: str):
    if text is None:
        return None
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        raise NadaError(f"bad {flag} {text!r}; give comma-separated numbers like 1.0,0.5") from None


def _names(text: str | None, flag: str) -> tuple[str, ...] | None:
    """A comma-separated list of names, e.g. --clip ViT-B/32,ViT-B/16; an empty name is an error."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise NadaError(f"{flag} {text!r} has an empty name; give names separated by single commas, e.g. ViT-B/32,ViT-B/16")
    return names


def cmd_train(args) -> int:
    from .config import PRESETS, make_config
    from .trainer import train

    explicit = dict(
        generator=args.generator, clip_models=_names(args.clip, "--clip"),
        clip_weights=_floats(args.clip_weights, "--clip-weights"), source_text=args.source, target_text=args.target,
        style_images=args.style_images, layers=args.layers, include_torgb=args.include_torgb, auto_every=args.auto_every,
        steps=args.steps, batch=args.batch, lr=args.lr, mixing=args.mixing, seed=args.seed, l2_weight=args.l2,
        id_weight=args.id_weight, templates=False if args.no_templates else None, sample_every=args.sample_every,
        checkpoint_every=args.checkpoint_every, keep=args.keep, device=args.device, fast=args.fast,
        eval_samples=args.eval_samples)
    explicit = {k: v for k, v in explicit.items() if v is not None}
    if args.clip is not None and args.clip_weights is None:
        explicit["clip_weights"] = (1.0,) * len(explicit["clip_models"])
    if args.resume:
        if args.preset and args.preset not in PRESETS:
            raise NadaError(f"unknown preset {args.preset!r}; use one of {', '.join(PRESETS)}")
        # Re-running the same command with --resume must work: its settings equal the saved ones.
        overrides = {**(PRESETS[args.preset] if args.preset else {}), **explicit}
        out = train(None, args.out, resume=True, overrides=overrides, progress=not args.quiet, sync_dir=args.sync_dir)
    else:
        out = train(make_config(args.preset, **explicit), args.out, progress=not args.quiet, sync_dir=args.sync_dir)
    print(f"wrote {out}; samples in {Path(args.out) / 'samples'}, log in {Path(args.out) / 'log.jsonl'}")
    return 0


def cmd_study(args) -> int:
    from .config import make_config
    from .study import export_results, run_study, study_strategies, study_table, write_study

    out = Path(args.out)
    configs = [(preset, make_config(preset, steps=args.steps, device=args.device)) for preset in args.preset]
    for preset, base in configs:
        specs = args.layers or study_strategies(base)
        title = f"{preset}, {base.steps} steps"
        rows = run_study(base, specs, out / preset, progress=not args.quiet)
        write_study(rows, out / preset, title=title)
        print(f"\n{title}\n{study_table(rows)}\n(table, rows and plot in {out / preset})")
        if args.results:
            export_results(rows, Path(args.results) / preset)
            write_study(rows, Path(args.results) / preset, title=title, paths=False)
            print(f"final grids, metrics and configs copied to {Path(args.results) / preset}")
    return 0


def _adapted_generators(sources, device) -> tuple[dict, set]:
    """{what the user typed: G} for adapted run dirs / checkpoints / .pt files, and the frozen sources they name."""
    from . import load_generator
    from .generator_io import adapted_generator_path

    adapted, parents = {}, set()
    for source in sources or []:
        path, parent = adapted_generator_path(source)
        adapted[source] = load_generator(path, device=device)
        parents.add(parent)
    return adapted, parents


def cmd_invert(args) -> int:
    from . import load_generator
    from .devices import resolve_device
    from .generator_io import adapted_generator_path, frozen_of
    from .inversion import apply_adapted, read_target, run_inversion, save_inversion, summary

    device = resolve_device(args.device)
    steps = args.steps if args.steps is not None else (0 if args.encoder else 500)
    # Everything that can fail on the user's input is checked before DIR is created.
    if steps < 0 or (steps == 0 and not args.encoder):
        raise NadaError(f"--steps must be >= 1 (or >= 0 with --encoder), got {steps}")
    generator = frozen_of({adapted_generator_path(a)[1] for a in args.adapted or []}, args.generator, default="ffhq-1024")
    G = load_generator(generator, device=device)
    target = read_target(args.image, G, align=args.align)
    adapted, _ = _adapted_generators(args.adapted, device)
    inv = run_inversion(G, target, steps=steps, latent=args.latent, loss=args.loss, clip=args.clip, encoder=args.encoder,
                        device=device)
    apply_adapted(inv, adapted)
    out = save_inversion(inv, args.out, extra={"generator": generator, "image": str(args.image), "aligned": args.align,
                                                "encoder": args.encoder})
    print(f"reconstruction {summary(inv)}; wrote {out}/side_by_side.png "
          f"(input, reconstruction, then each adapted generator), latents.pt and metrics.json")
    return 0


def cmd_edit(args) -> int:
    import torch

    from . import load_generator
    from .clip_guide import tokenize
    from .devices import resolve_device
    from .fileio import atomic_torch_save, atomic_write_text
    from .images import image_grid, save_image
    from .inversion import load_latents
    from .latent_edit import before_after, edit_latent, edit_models

    device = resolve_device(args.device)
    tokenize([args.text], "cpu")  # a prompt over 77 tokens fails here, before any model loads
    data = load_latents(args.latents)
    generator = args.generator or data.get("generator")
    if not generator:
        raise NadaError(f"{args.latents} does not name its generator; pass --generator")
    G = load_generator(generator, device=device)
    if data["ws"].shape[1:] != (G.num_ws, G.w_dim):
        raise NadaError(f"{args.latents} holds ws {tuple(data['ws'].shape)} but {generator} needs "
                        f"(1, {G.num_ws}, {G.w_dim}); pass the generator it was inverted with (--generator)")
    adapted, _ = _adapted_generators(args.adapted, device)
    guide, identity, why = edit_models(args.clip, device=device, identity=args.identity == "auto")
    print(why)
    noise = [n.to(device) for n in data.get("noise") or []] or None
    edit = edit_latent(G, data["ws"], args.text, guide, steps=args.steps, lr=args.lr, l2_weight=args.l2,
                       identity=identity, noise=noise, log=print)
    rows = before_after([G, *adapted.values()], data["ws"], edit.ws, noise)
    out = Path(args.out)
    save_image(rows[0][0], out / "before.png")
    save_image(rows[1][0], out / "edited.png")
    for i in range(len(adapted)):
        save_image(rows[3 + 2 * i][0], out / f"adapted_{i}.png")
    save_image(image_grid(torch.cat(rows), nrow=2), out / "before_after.png")
    atomic_torch_save({"ws": edit.ws.cpu(), "noise": [n.cpu() for n in noise or []], "latent": "w+",
                       "generator": generator, "text": args.text}, out / "latents.pt")
    metrics = {"text": args.text, "clip_similarity_before": edit.similarity_before,
               "clip_similarity_after": edit.similarity_after, "l2": edit.l2, "steps": args.steps,
               "identity": identity is not None, "clip": args.clip, "adapted": list(adapted)}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    print(f"CLIP similarity to {args.text!r}: {edit.similarity_before:.3f} -> {edit.similarity_after:.3f}; wrote "
          f"{out}/before_after.png (rows: frozen, then each adapted generator; columns: before, edited), latents.pt, metrics.json")
    return 0


def cmd_convert(args) -> int:
    from . import load_generator, save_generator

    if not str(args.out).endswith(".pt"):
        raise NadaError(f"--out must be a .pt file, got {args.out}")
    G = load_generator(args.generator)
    save_generator(G, args.out)
    print(f"wrote {args.out}: rosinality-format StyleGAN2 ({G.img_resolution} px, {G.num_ws} ws)")
    return 0


def cmd_fetch(args) -> int:
    from .download import fetch

    for name in args.names:
        print(fetch(name, quiet=args.quiet))
    return 0


def cmd_weights(args) -> int:
    from . import registry
    from .download import human_size

    rows = [(s.name, s.kind, human_size(s.size), "yes" if registry.is_present(s.name) else "no", str(registry.local_path(s.name)))
            for s in registry.REGISTRY.values()]
    if args.json:
        print(json.dumps([dict(zip(("name", "kind", "size", "present", "path"), r)) for r in rows], indent=2))
        return 0
    widths = [max(len(r[i]) for r in rows + [("name", "kind", "size", "present", "path")]) for i in range(5)]
    for r in [("name", "kind", "size", "present", "path")] + rows:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())
    return 0


def cmd_selfcheck(args) -> int:
    """Offline end-to-end check: build, save, reload and render a generator; run a CLIP; list weights."""
    import torch
    import torch.nn.functional as F

    from . import load_generator, random_generator, save_generator
    from .clip_models import clip_input_resolution, make_tiny_clip
    from .devices import resolve_device
    from .fileio import atomic_write_text
    from .images import image_grid, save_image

    device = resolve_device(args.device)
    out = Path(args.out)
    report: dict = {"device": str(device), "torch": torch.__version__, "img_resolution": args.size}
    t0 = time.perf_counter()
    G = random_generator(args.size).to(device)
    path = save_generator(G, out / f"random-{args.size}.pt")
    G2 = load_generator(path, device=device)
    same = all(torch.equal(a, b) for a, b in zip(G.state_dict().values(), G2.state_dict().values()))
    report["save_load_exact"] = same
    images = render_seeds(G2, list(range(8)), truncation_psi=0.7, noise_mode="const", class_idx=None, device=device)
    report["generate_s"] = round(time.perf_counter() - t0, 2)
    save_image(image_grid(images, nrow=4), out / "grid.png")
    clip_model = make_tiny_clip().to(device)
    r = clip_input_resolution(clip_model)
    emb = clip_model.encode_image(F.interpolate(images.to(device), size=(r, r), mode="bilinear", align_corners=False))
    report["clip_embedding_finite"] = bool(torch.isfinite(emb).all())
    ok = same and report["clip_embedding_finite"] and images.shape == (8, 3, args.size, args.size)
    report["passed"] = ok
    atomic_write_text(out / "report.json", json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))
    print(f"wrote {out / 'grid.png'} (random weights: noise-like images are expected)")
    cmd_weights(argparse.Namespace(json=False))
    if not ok:
        print("error: selfcheck failed; see report.json", file=sys.stderr)
        return 1
    print("selfcheck passed")
    return 0


def cmd_evaluate(args) -> int:
    from tqdm.auto import tqdm

    from . import load_generator
    from .checkpoint import list_checkpoints
    from .devices import resolve_device
    from .evaluation import Evaluator, evaluation_table, write_evaluation
    from .generator_io import adapted_generator_path
    from .run_dir import holds_run, read_config, read_evals
    from .trainer import setup_from_config

    run_dir = Path(args.run)
    if not holds_run(run_dir):
        raise NadaError(f"{run_dir} is not a run directory (no config.json or checkpoints); pass the --out of a train run")
    cfg = read_config(run_dir)
    n = args.n if args.n is not None else cfg.eval_samples or 32
    if n < 2:
        raise NadaError(f"--n must be >= 2 (diversity compares pairs), got {n}")
    clip = _names(args.clip, "--clip") or tuple(cfg.clip_models)
    own_judge = clip == tuple(cfg.clip_models) and not args.faces
    checkpoints = list_checkpoints(run_dir)
    if args.checkpoint is None and not checkpoints:
        raise NadaError(f"{run_dir} has no checkpoints yet; evaluate once training has written one")
    if args.faces:
        from .face_descriptors import load_face_models

        load_face_models()  # a missing extra fails here, before the models load
    device = resolve_device(args.device)
    setup = setup_from_config(cfg, device, judges=clip)
    evaluator = Evaluator(setup.G_frozen, setup.guide, setup.directions, setup.global_targets, n=n, faces=args.faces,
                          ground_truth=cfg.ground_truth)
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
    summary, written = write_evaluation(run_dir, rows, judge=list(clip))
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    best = summary["best"]
    print(evaluation_table(rows, best["step"]))
    print(f"\nkeep step {best['step']}: {best['why']}" + (f"\n  {best['checkpoint']}" if best.get("checkpoint") else
                                                         " (that checkpoint was deleted; its evaluation remains)"))
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


def cmd_bench(args) -> int:
    from .bench import format_result, run_bench

    if args.batch < 1 or args.steps < 1 or args.warmup < 0:
        raise NadaError("--batch and --steps must be >= 1 and --warmup >= 0")
    clip = _names(args.clip, "--clip")
    result = run_bench(size=args.size, batch=args.batch, clip=clip, layers=args.layers, device=args.device, fast=args.fast,
                       steps=args.steps, warmup=args.warmup, log=(lambda _: None) if args.json else print)
    print(json.dumps(result, indent=2) if args.json else format_result(result))
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="nada_utils", description="nada: text-driven StyleGAN2 domain adaptation (StyleGAN-NADA).")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)

    t = sub.add_parser("train", help="adapt a generator to a text (or style images) with NADA")
    t.add_argument("--out", required=True, help="run directory (never overwritten; see --resume)")
    t.add_argument("--preset", help="tiny (seconds on a CPU, mechanics only) or ffhq-sketch (the reference run)")
    t.add_argument("--generator", help="registry name, .pt/.pkl path, or random:tiny")
    t.add_argument("--clip", help="CLIP models, comma-separated (default ViT-B/32,ViT-B/16)")
    t.add_argument("--clip-weights", help="one weight per CLIP model, e.g. 1.0,1.0")
    t.add_argument("--source", help="source text (default: photo)")
    t.add_argument("--target", help="target text (default: sketch)")
    t.add_argument("--no-templates", action="store_true", default=None, help="use the bare texts, not the 79 templates")
    t.add_argument("--style-images", help="folder of style images: image-guided direction instead of text")
    t.add_argument("--layers", help="all, last:K, phase:NAME, layers:A,B, auto:K or gradnorm:K (default all)")
    t.add_argument("--include-torgb", action="store_true", default=None, help="also train the toRGB layers")
    t.add_argument("--auto-every", type=int, help="auto/gradnorm: reselect layers every N steps (default 1)")
    t.add_argument("--steps", type=int)
    t.add_argument("--batch", type=int)
    t.add_argument("--lr", type=float)
    t.add_argument("--mixing", type=float, help="style-mixing probability")
    t.add_argument("--seed", type=int)
    t.add_argument("--l2", type=float, help="weight of the L2 regulariser to G_frozen's images")
    t.add_argument("--id-weight", type=float, help="weight of the IR-SE50 identity loss (faces)")
    t.add_argument("--sample-every", type=int)
    t.add_argument("--checkpoint-every", type=int)
    t.add_argument("--keep", type=int, help="checkpoints kept (default 3; the best one by `evaluate`'s rule is kept too)")
    t.add_argument("--eval-samples", type=int, help="held-out latents scored at each checkpoint (default 32; 0: off)")
    t.add_argument("--resume", action="store_true", help="continue the run in --out from its newest checkpoint")
    t.add_argument("--sync-dir", help="mirror the run here (e.g. a Google Drive folder); --resume restores from it")
    t.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    t.add_argument("--fast", help="speed options: auto (tf32,channels_last on a GPU; none on a CPU), none, or a comma "
                                  "list of tf32, bf16, channels_last, checkpoint (less GPU memory), compile")
    t.add_argument("--quiet", action="store_true", help="no progress bar")
    t.set_defaults(func=cmd_train)

    g = sub.add_parser("generate", help="render images from a generator or an adapted run")
    g.add_argument("--generator", help="registry name (see `weights`), a .pt/.pkl path, or random:tiny")
    g.add_argument("--checkpoint", help="an adapted run directory, a training checkpoint or a generator .pt")
    g.add_argument("--compare", action="store_true", help="top row the frozen generator, bottom row the adapted one")
    g.add_argument("--seeds", default="0-7", help="e.g. 0-7 or 1,5,9 (same seeds as NVlabs' tools)")
    g.add_argument("--truncation", type=float, default=1.0, help="truncation psi in [0, 1]")
    g.add_argument("--noise-mode", default="const", choices=["const", "random", "none"])
    g.add_argument("--class", dest="class_idx", type=int, default=None, help="class label, for conditional models")
    g.add_argument("--out", required=True, help="a directory (one PNG per seed plus grid.png) or a .png file (the grid only)")
    g.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    g.set_defaults(func=cmd_generate)

    st = sub.add_parser("study", help="block importance: train a preset once per layer strategy, on the same budget")
    st.add_argument("--preset", nargs="+", required=True, help="one or more presets, e.g. mini-sketch mini-night")
    st.add_argument("--layers", nargs="+", help="layer specs (default: last:K for every K, the phases, all, auto:K, gradnorm:K)")
    st.add_argument("--steps", type=int, help="steps of every run (default: the preset's)")
    st.add_argument("--out", required=True, help="runs go to OUT/PRESET/SPEC/ (reused or resumed when run again); table and plot to OUT/PRESET/")
    st.add_argument("--results", help="also copy each run's final grid, metrics and config to RESULTS/PRESET/SPEC/")
    st.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    st.add_argument("--quiet", action="store_true", help="no progress bars")
    st.set_defaults(func=cmd_study)

    inv = sub.add_parser("invert", help="project an image into a generator's latent space; render it with adapted generators")
    inv.add_argument("--image", required=True, help="any image PIL reads; centre-cropped and resized to the generator")
    inv.add_argument("--out", required=True, help="folder for the images, latents.pt and metrics.json")
    inv.add_argument("--generator", help="the frozen generator (default: the one the --adapted runs name, else ffhq-1024)")
    inv.add_argument("--adapted", nargs="+", help="adapted run dirs, checkpoints or .pt files to render the latent with")
    inv.add_argument("--steps", type=int, help="projection steps (default 500; 0 with --encoder)")
    inv.add_argument("--latent", choices=["w", "w+"], default="w+")
    inv.add_argument("--loss", choices=["auto", "lpips", "clip", "pixel"], default="auto",
                     help="auto: LPIPS-VGG when its weights are cached (fetch vgg16 lpips-vgg), else CLIP features + pixels")
    inv.add_argument("--clip", default="ViT-B/32", help="the CLIP model of the LPIPS fallback (mini world: mini-clip)")
    inv.add_argument("--encoder", help="start from an e4e encoder's latent (e4e-ffhq or a path); faster, FFHQ only")
    inv.add_argument("--align", action="store_true", help="FFHQ-align the face first (needs: pip install 'nada[align]')")
    inv.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    inv.set_defaults(func=cmd_invert)

    ed = sub.add_parser("edit", help="move an inverted latent towards a text (StyleCLIP optimisation); render it")
    ed.add_argument("--latents", required=True, help="latents.pt written by invert (or by edit)")
    ed.add_argument("--text", required=True, help="describe the result, e.g. 'a face with blue hair'")
    ed.add_argument("--out", required=True, help="folder for before/after images, latents.pt and metrics.json")
    ed.add_argument("--generator", help="default: the generator named in latents.pt")
    ed.add_argument("--adapted", nargs="+", help="also render the edited latent with these adapted generators")
    ed.add_argument("--clip", default="ViT-B/32", help="the CLIP model that judges the text (mini world: mini-clip)")
    ed.add_argument("--steps", type=int, default=100)
    ed.add_argument("--lr", type=float, default=0.1)
    ed.add_argument("--l2", type=float, default=0.008, help="weight of |w - w_start|^2: higher keeps more of the picture")
    ed.add_argument("--identity", choices=["auto", "off"], default="auto",
                    help="auto: add the IR-SE50 identity loss when its weights are cached (faces)")
    ed.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    ed.set_defaults(func=cmd_edit)

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
    b.add_argument("--size", type=int, default=256, choices=[32, 64, 128, 256, 512, 1024], help="generator resolution (config-f)")
    b.add_argument("--batch", type=int, default=2)
    b.add_argument("--clip", default="ViT-B/32", help="CLIP architectures, comma-separated: ViT-B/32, ViT-B/16, ViT-L/14")
    b.add_argument("--layers", default="all", help="layer spec, as for train (auto:K also times the selection)")
    b.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    b.add_argument("--fast", default="none", help="fast paths to time: none, auto, or a list as for train")
    b.add_argument("--steps", type=int, default=5, help="timed warm steps (the median is reported)")
    b.add_argument("--warmup", type=int, default=2, help="untimed steps first")
    b.add_argument("--json", action="store_true", help="print the full result as JSON")
    b.set_defaults(func=cmd_bench)

    c = sub.add_parser("convert", help="convert any supported checkpoint to a rosinality-format .pt")
    c.add_argument("--generator", required=True)
    c.add_argument("--out", required=True)
    c.set_defaults(func=cmd_convert)

    f = sub.add_parser("fetch", help="download registry weights into the cache (NADA_CACHE)")
    f.add_argument("names", nargs="+")
    f.add_argument("--quiet", action="store_true")
    f.set_defaults(func=cmd_fetch)

    w = sub.add_parser("weights", help="list registry weights and whether they are in the cache")
    w.add_argument("--json", action="store_true")
    w.set_defaults(func=cmd_weights)

    s = sub.add_parser("selfcheck", help="offline end-to-end check of the installation")
    s.add_argument("--out", default="results/selfcheck")
    s.add_argument("--size", type=int, default=256, choices=[32, 64, 128, 256, 512, 1024])
    s.add_argument("--device", default="auto")
    s.set_defaults(func=cmd_selfcheck)
    return p


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        return args.func(args)
    except NadaError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a path the user gave that cannot be read or written: theirs to fix, not a bug
        print(f"error: {_os_error(e)}", file=sys.stderr)
        return 2
    except RuntimeError as e:
        if not _is_out_of_memory(e):
            raise
        first = (str(e).strip().splitlines() or [""])[0][:160]
        print(f"error: out of memory ({first}); lower --batch, train fewer layers, or on a GPU add --fast checkpoint",
              file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


def _os_error(e: OSError) -> str:
    """One line for a failed read or write: what, where, and what to do."""
    where = f" {e.filename}" if e.filename else ""
    what = e.strerror or str(e)
    if e.errno == errno.ENOSPC:
        fix = "free some space or write somewhere else"
    elif e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "choose a location you may write to"
    elif e.errno in (errno.ENOTDIR, errno.EEXIST, errno.EISDIR):
        fix = "a file and a folder are mixed up in that path; give a folder where one is needed"
    else:
        fix = "check the path and that its folders exist"
    return f"{what}:{where}; {fix}"


def _is_out_of_memory(e: RuntimeError) -> bool:
    # torch.OutOfMemoryError on a GPU; on a CPU the allocator raises a plain RuntimeError (when the
    # kernel's out-of-memory killer does not end the process first).
    return type(e).__name__ == "OutOfMemoryError" or "can't allocate memory" in str(e) or "out of memory" in str(e)
