"""Why the mini-night preset fails: what the judge calls night, and whether a generator draws the stars.

The night is the dark photo plus a rim light and 18 stars at fixed places of the sky (`world_v2.STARS`).
Three probes on held-out scenes (docs/MINI_WORLD.md, "Night"):

1. the judge on made-up images: the dark photo with the sky's stars, with 18 stars elsewhere, with
   coloured speckle (a grainy generator's look);
2. `stars`: how much brighter an image is at the sky's star places than 3 px beside them (page only,
   luminance in [0, 1]; a true night about 0.47, the dark photo 0) for the frozen generator and for
   each generator or run dir given: a judged share can come from grain, the stars cannot;
3. `--supervised N`: a capacity check, not NADA: train the layers of `--layers` for N steps by
   regression to the true night renders of random scenes, with the loss the generator was trained
   with (L1 plus `--edge-weight` times the L1 of image gradients, which weighs a star as much as a
   patch of page), and measure the same figures every `--every` steps.

    python scripts/mini_world/night_probe.py runs/mini-night --supervised 2000
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from train_generator_v2 import loss_fn  # noqa: E402

from nada_utils import load_generator  # noqa: E402
from nada_utils.adapt import freezing  # noqa: E402
from nada_utils.adapt.run_dir import adapted_generator_path  # noqa: E402
from nada_utils.mini_world import world_v2 as W  # noqa: E402
from nada_utils.mini_world.judge import load_judge  # noqa: E402
from nada_utils.mini_world.metrics_v2 import held_out, judged  # noqa: E402
from nada_utils.models.rendering import class_input  # noqa: E402


def star_contrast(images: torch.Tensor, scenes: torch.Tensor) -> float:
    """Mean luminance at the sky's star pixels minus 3 px beside them, over stars off the shape, in [0, 1] units."""
    res = images.shape[-1]
    lum = (images.mean(1) + 1) / 2
    off_shape = W.shape_mask(scenes, res)[:, 0] < 0.01
    places = ((W.STARS + 1) / 2 * res - 0.5).round().long().clamp(0, res - 1)
    diffs = []
    for x, y in places.tolist():
        beside = torch.stack([lum[:, (y + dy) % res, (x + dx) % res] for dx, dy in ((3, 0), (-3, 0), (0, 3), (0, -3))])
        keep = off_shape[:, y, x]
        diffs.append(lum[keep, y, x] - beside.mean(0)[keep])
    return torch.cat(diffs).mean().item()


def figures(J, images: torch.Tensor, scenes: torch.Tensor) -> dict:
    r = judged(J, images.clamp(-1, 1), scenes, "night")
    return {"judged_night": r["target"], "shape_kept": r["shape"], "stars": star_contrast(images.clamp(-1, 1), scenes),
            "judged_domains": r["domains"]}


def made_up_images(scenes: torch.Tensor, res: int) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(1)
    elsewhere = torch.rand(len(W.STARS), 2, generator=gen) * 1.8 - 0.9
    dark = W.render(scenes, "dark-photo", res)
    speckled = (torch.rand(len(scenes), 1, res, res, generator=gen) < 0.05).float()
    colours = torch.rand(len(scenes), 3, res, res, generator=gen) * 2
    return {
        "the true night": W.render(scenes, "night", res),
        "dark photo": dark,
        "dark photo + the sky's stars (no rim light)": W.with_stars(scenes, "dark-photo", W.STARS, res),
        "dark photo + 18 stars elsewhere": W.with_stars(scenes, "dark-photo", elsewhere, res),
        "dark photo + coloured speckle on 5% of pixels": dark * (1 - speckled) + speckled * (dark + colours).clamp(-1, 1),
    }


def generator_of(source: str):
    path = Path(source)
    return load_generator(adapted_generator_path(path)[0] if path.exists() else source)


def supervised(G0, J, z, c, scenes, *, layers: str, steps: int, every: int, lr: float, edge_weight: float,
               seed: int) -> list[dict]:
    """Train `layers` of a copy of G0 by regression to true night renders of random scenes (the
    generator's own loss); figures every `every` steps."""
    torch.manual_seed(seed)
    G = copy.deepcopy(G0)
    freezing.set_trainable(G, freezing.static_layers(freezing.parse_layer_spec(layers, G, include_torgb=True), G,
                                                     include_torgb=True))
    opt = torch.optim.Adam([p for p in G.parameters() if p.requires_grad], lr=lr, betas=(0.0, 0.99))
    rows = []
    for step in range(1, steps + 1):
        zs = torch.randn(8, G.z_dim)
        labels = torch.randint(0, len(W.SHAPES), (8,)) if G.c_dim else None
        target = W.render(W.scene_from_z(zs, labels), "night", G.img_resolution)
        loss = loss_fn(G(zs, class_input(G, labels, "cpu")), target, edge_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                rows.append({"step": step, "loss": loss.item(), **figures(J, G(z, c), scenes)})
            print(f"supervised {layers} step {step}: loss {loss.item():.4f}, judged night {rows[-1]['judged_night']:.2f}, "
                  f"shape kept {rows[-1]['shape_kept']:.2f}, stars {rows[-1]['stars']:.3f}", flush=True)
    return rows


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("generators", nargs="*", help="adapted generators: run dirs, .pt files or registry names")
    p.add_argument("--frozen", default="mini-photo-2")
    p.add_argument("--n", type=int, default=128, help="held-out scenes")
    p.add_argument("--supervised", type=int, default=0, metavar="STEPS", help="also run the capacity check")
    p.add_argument("--layers", default="last:3", help="the capacity check's layers (toRGB included)")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--edge-weight", type=float, default=1.0, help="the gradient term's weight (0: plain L1)")
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    G0, J = load_generator(args.frozen), load_judge()
    z, labels, scenes = held_out(G0, args.n)
    c = class_input(G0, labels, "cpu")
    made_up = made_up_images(scenes, G0.img_resolution)
    generated = {"frozen generator": G0(z, c), **{source: generator_of(source)(z, c) for source in args.generators}}
    report: dict = {"made_up": {}, "generators": {}}
    print("| image | judged night | shape kept | stars |\n|---|---|---|---|")
    for group, shown in (("made_up", made_up), ("generators", generated)):
        for name, images in shown.items():
            row = report[group][name] = figures(J, images, scenes)
            print(f"| {name} | {row['judged_night']:.2f} | {row['shape_kept']:.2f} | {row['stars']:.3f} |")
    if args.supervised:
        with torch.enable_grad():
            report["supervised"] = supervised(G0, J, z, c, scenes, layers=args.layers, steps=args.supervised,
                                              every=args.every, lr=args.lr,
                                              edge_weight=args.edge_weight, seed=args.seed)
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
