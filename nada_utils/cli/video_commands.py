"""`video`: a latent walk, a domain morph or an inverted photo, rendered by the frozen and every adapted generator."""

from __future__ import annotations

import argparse
from pathlib import Path

from nada_utils.errors import NadaError


def cell_name(source: str) -> str:
    """A short label for an adapted generator: its run folder's name (runs/sketch/generator.pt -> sketch)."""
    path = Path(str(source).rstrip("/"))
    if path.name == "generator.pt" or path.parent.name == "checkpoints":
        path = path.parent.parent if path.parent.name == "checkpoints" else path.parent
    return path.stem if path.suffix == ".pt" else path.name


def class_list(text: str):
    """--class 3 -> 3; --class 0,1,2 -> [0, 1, 2]."""
    try:
        parts = [int(p) for p in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--class takes a class number or a list such as 0,1,2, not {text!r}") from None
    return parts[0] if len(parts) == 1 else parts


def cmd_video(args) -> int:
    from nada_utils.adapt.run_dir import adapted_generator_path, frozen_of
    from nada_utils.devices import resolve_device
    from nada_utils.invert.inversion import load_latents
    from nada_utils.models.generator_io import load_generator
    from nada_utils.models.rendering import parse_seeds
    from nada_utils.video.encoders import check_writable
    from nada_utils.video.render import check_settings, make_video

    # Settings and the output's format first: a typo costs no model load.
    size = args.size or 0
    check_settings(kind=args.kind, fps=args.fps, seconds=args.seconds, size=size or 64)
    check_writable(args.out, frames=0, width=0, height=0)
    if not args.adapted and not args.generator and not args.latents:
        raise NadaError("no generators: pass --adapted (run folders, checkpoints or .pt files) and/or --generator")
    seeds = parse_seeds(args.seeds)
    latents = load_latents(args.latents) if args.latents else None
    edit = load_latents(args.edit) if args.edit else None
    if args.kind != "photo" and (latents or edit):
        raise NadaError(f"--latents and --edit belong to --kind photo, not {args.kind}")
    if edit is not None and latents is None:
        raise NadaError("--edit moves an inverted photo's latent: pass --latents too (the invert result)")
    device = resolve_device(args.device)
    paths = {}
    parents = set()
    for source in args.adapted or []:
        path, parent = adapted_generator_path(source)
        name = cell_name(source)
        if name in paths or name == "frozen":
            name = f"{name} ({len(paths) + 1})"
        paths[name] = path
        parents.add(parent)
    # A photo's latents name the generator they were inverted with; runs name theirs in config.json.
    frozen = frozen_of(parents, args.generator or (None if parents else (latents or {}).get("generator")))
    G_frozen = load_generator(frozen, device=device)
    adapted = {name: load_generator(path, device=device) for name, path in paths.items()}
    video = make_video(args.out, G_frozen, adapted, kind=args.kind, seeds=seeds, latents=latents, edit=edit,
                       fps=args.fps, seconds=args.seconds, size=args.size, truncation=args.truncation,
                       space=args.space, one_way=args.one_way, class_idx=args.class_idx, batch=args.batch)
    cells = ", ".join([f"frozen ({frozen})", *adapted])
    print(f"wrote {video.path}: {video.frames} frames of {video.width}x{video.height} px at {video.fps} fps "
          f"({video.frames / video.fps:.1f} s) in {video.seconds_taken:.1f} s; cells: {cells}")
    return 0


def add_commands(sub) -> None:
    """Add this group's subcommands to the parser's `sub`."""
    v = sub.add_parser("video", help="a video of the frozen and adapted generators side by side: a walk, a morph or your photo")
    v.add_argument("--kind", default="walk", choices=["walk", "morph", "photo"],
                   help="walk: a loop through the seeds' latents; morph: the weights blend frozen -> adapted -> frozen; "
                        "photo: an inverted photo in every domain (moved along --edit when given)")
    v.add_argument("--out", required=True, help="the video file: .mp4 (H.264, needs PyAV: pip install av) or .gif")
    v.add_argument("--adapted", nargs="+", help="adapted run folders, checkpoints or generator .pt files, one cell each")
    v.add_argument("--generator", help="the frozen generator (default: the one the runs' config.json names)")
    v.add_argument("--seeds", default="0-3", help="walk: the loop's key points; morph: one row each (e.g. 0-3 or 1,5,9)")
    v.add_argument("--latents", help="photo: latents.pt written by `invert`")
    v.add_argument("--edit", help="photo: latents.pt written by `edit`; the latent moves to it and back")
    v.add_argument("--fps", type=int, default=24)
    v.add_argument("--seconds", type=float, default=4.0, help="length of the video (one full loop)")
    v.add_argument("--size", type=int, help="side of each generator's cell in pixels, even (default: its resolution, at most 256)")
    v.add_argument("--truncation", type=float, default=1.0, help="truncation psi in [0, 1] (walk and morph)")
    v.add_argument("--space", choices=["z", "w"], default="z",
                   help="walk: slerp in z (each generator maps z) or lerp in w (the frozen generator's w for all)")
    v.add_argument("--one-way", action="store_true", help="morph and edit: go 0 -> 1 once instead of there and back")
    v.add_argument("--class", dest="class_idx", type=class_list, default=None,
                   help="class label for conditional models; a list (0,1,2) gives the seeds their classes in turn "
                        "(a morph's rows; a walk with --space w moves between them)")
    v.add_argument("--batch", type=int, default=8, help="frames rendered at once (lower it if memory runs out)")
    v.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    v.set_defaults(func=cmd_video)
