"""Commands that make images: `generate` (seeds through a generator or a run), `invert` (a photo into a
latent) and `edit` (a latent moved towards a text)."""

from __future__ import annotations

import json
from pathlib import Path

from nada_utils.errors import NadaError
from nada_utils.models.rendering import parse_seeds, render_seeds


def cmd_generate(args) -> int:
    import torch

    from nada_utils.adapt.run_dir import adapted_generator_path
    from nada_utils.devices import resolve_device
    from nada_utils.images import image_grid, save_image
    from nada_utils.models.generator_io import load_generator

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


def _adapted_generators(sources, device) -> tuple[dict, set]:
    """{what the user typed: G} for adapted run dirs / checkpoints / .pt files, and the frozen sources they name."""
    from nada_utils.adapt.run_dir import adapted_generator_path
    from nada_utils.models.generator_io import load_generator

    adapted, parents = {}, set()
    for source in sources or []:
        path, parent = adapted_generator_path(source)
        adapted[source] = load_generator(path, device=device)
        parents.add(parent)
    return adapted, parents


def cmd_invert(args) -> int:
    from nada_utils.adapt.run_dir import adapted_generator_path, frozen_of
    from nada_utils.devices import resolve_device
    from nada_utils.invert.inversion import apply_adapted, read_target, run_inversion, save_inversion, summary
    from nada_utils.models.generator_io import load_generator

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

    from nada_utils.adapt.clip_guide import tokenize
    from nada_utils.devices import resolve_device
    from nada_utils.fileio import atomic_torch_save, atomic_write_text
    from nada_utils.images import image_grid, save_image
    from nada_utils.invert.inversion import load_latents
    from nada_utils.invert.latent_edit import before_after, edit_latent, edit_models
    from nada_utils.models.generator_io import load_generator

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


def add_commands(sub) -> None:
    """Add this group's subcommands to the parser's `sub`."""
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
