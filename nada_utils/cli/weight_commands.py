"""Commands about files and the installation: `convert`, `fetch`, `weights`, `selfcheck`."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nada_utils.errors import NadaError
from nada_utils.models.rendering import render_seeds


def cmd_convert(args) -> int:
    from nada_utils.models.generator_io import load_generator, save_generator

    if not str(args.out).endswith(".pt"):
        raise NadaError(f"--out must be a .pt file, got {args.out}")
    G = load_generator(args.generator)
    save_generator(G, args.out)
    print(f"wrote {args.out}: rosinality-format StyleGAN2 ({G.img_resolution} px, {G.num_ws} ws)")
    return 0


def cmd_fetch(args) -> int:
    from nada_utils.weights.download import fetch

    for name in args.names:
        print(fetch(name, quiet=args.quiet))
    return 0


def cmd_weights(args) -> int:
    from nada_utils.weights import registry
    from nada_utils.weights.download import human_size

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

    from nada_utils.devices import resolve_device
    from nada_utils.fileio import atomic_write_text
    from nada_utils.images import image_grid, save_image
    from nada_utils.models.builtin_models import random_generator
    from nada_utils.models.clip_arch import make_tiny_clip
    from nada_utils.models.clip_models import clip_input_resolution
    from nada_utils.models.generator_io import load_generator, save_generator

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


def add_commands(sub) -> None:
    """Add this group's subcommands to the parser's `sub`."""
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
