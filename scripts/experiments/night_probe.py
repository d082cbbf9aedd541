"""Why the mini-night preset fails: what the judge calls night, and whether a generator draws the stars.

The night is the dark photo plus a rim light and 18 stars at fixed places of the sky (`world.STARS`).
Four probes on held-out scenes (docs/MINI_WORLD.md, "Why the night fails"):

1. the judge on made-up images: the dark photo with the sky's stars, with 18 stars elsewhere, with
   coloured speckle (a grainy generator's look);
2. `stars`: how much brighter an image is at the sky's star places than 3 px beside them (page only,
   luminance in [0, 1]; a true night about 0.47, the dark photo 0) for the frozen generator and for
   each generator or run dir given: a judged share can come from grain, the stars cannot; beside
   them, cos(ΔI, ΔT) of "a photo" -> "a night photo" from the frozen samples under each `--clips`
   model (where the directional loss would rather be);
3. `--supervised N`: a capacity check, not NADA: train the layers of `--layers` for N steps by
   regression to the true night renders of random scenes, with the loss the generator was trained
   with (L1 plus `--edge-weight` times the L1 of image gradients, which weighs a star as much as a
   patch of page), and measure the same figures every `--every` steps;
4. `--nada N`: the same layers trained by the directional loss of "a photo" -> "a night photo" under
   `--nada-clip`, as the mini-night preset does (toRGB frozen, batch 8, bare texts).

`--positional` gives both checks a learned image added to the generator's output (zero at the start,
5 x the learning rate): a path from absolute position to every pixel, which tells whether position is
what the generator lacks; `--sparsity W` adds W x its mean absolute value to the loss, so that grain
costs and a few stars would not. `--grids DIR` writes each check's rows (frozen, trained, true night; the
learned image) as DIR/supervised[-positional][-sparsityW].png and DIR/nada[-positional][-sparsityW]-CLIP[+CLIP].png.

    python scripts/experiments/night_probe.py runs/mini-night --supervised 2000
    python scripts/experiments/night_probe.py --supervised 200 --nada 200 --positional --grids runs/night-grids
"""

from __future__ import annotations

import argparse
import copy
import json
from pathlib import Path

import torch

from nada_utils import load_clip, load_generator
from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.losses import directional_loss
from nada_utils.adapt import freezing
from nada_utils.adapt.run_dir import adapted_generator_path
from nada_utils.images import image_grid, save_image
from nada_utils.mini_world import world as W
from nada_utils.mini_world.judge import load_judge
from nada_utils.mini_world.metrics import held_out, judged
from nada_utils.mini_world.recipe.train_generator import loss_fn  # the generator's own loss, for the capacity check
from nada_utils.models.rendering import class_input


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


def figures(J, images: torch.Tensor, scenes: torch.Tensor, directions: dict | None = None) -> dict:
    """The judge's night share and shapes, `stars`, and cos(ΔI, ΔT) under each of `directions`
    ({name: (guide, frozen embeddings, text direction)}): 1 - the directional loss itself, with no
    floor, so that it is the cosine training maximises."""
    images = images.clamp(-1, 1)
    r = judged(J, images, scenes, "night")
    cos = {name: 1 - directional_loss(frozen, guide.encode_images(images)[0], text, floor=1e-8).item()
           for name, (guide, frozen, text) in (directions or {}).items()}
    return {"judged_night": r["target"], "shape_kept": r["shape"], "stars": star_contrast(images, scenes),
            "cos": cos, "judged_domains": r["domains"]}


def text_directions(names: list[str], frozen_images: torch.Tensor) -> dict:
    """{CLIP name: (guide, its embeddings of the frozen images, unit direction "a photo" -> "a night photo")}."""
    out = {}
    for name in names:
        guide = ClipGuide([(name, load_clip(name), 1.0)])
        direction = guide.text_directions(W.domain_prompt("photo"), W.domain_prompt("night"), templates=False)[0]
        out[name] = (guide, guide.encode_images(frozen_images)[0], direction)
    return out


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


class OutputBias(torch.nn.Module):
    """A generator plus a learned image added to its output, zero at the start: a path from absolute
    position to every pixel, which the mini generator lacks (its only sources of position are its
    4 x 4 constant and the zero padding)."""

    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.c_dim, self.img_resolution = G, G.z_dim, G.c_dim, G.img_resolution
        self.bias = torch.nn.Parameter(torch.zeros(1, 3, G.img_resolution, G.img_resolution))

    def forward(self, z, c=None):
        return self.G(z, c) + self.bias


def fit(G0, J, z, c, scenes, objective, *, name: str, layers: str, include_torgb: bool, steps: int, every: int,
        lr: float, positional: bool, sparsity: float, seed: int, directions: dict) -> tuple[list[dict], torch.nn.Module]:
    """Train `layers` of a copy of G0 (with `positional`, also an OutputBias at 5 x lr, its mean
    absolute value weighted by `sparsity` in the loss) on `objective(images, z, c, scenes)` for
    batches of 8 random scenes; figures (cos under `directions`) every `every` steps."""
    torch.manual_seed(seed)
    G = copy.deepcopy(G0)
    freezing.set_trainable(G, freezing.static_layers(freezing.parse_layer_spec(layers, G, include_torgb=include_torgb), G,
                                                     include_torgb=include_torgb))
    groups = [{"params": [p for p in G.parameters() if p.requires_grad], "lr": lr}]
    if positional:
        G = OutputBias(G)
        groups.append({"params": [G.bias], "lr": 5 * lr})
    opt = torch.optim.Adam(groups, betas=(0.0, 0.99))
    rows = []
    for step in range(1, steps + 1):
        zs = torch.randn(8, G.z_dim)
        labels = torch.randint(0, len(W.SHAPES), (8,)) if G.c_dim else None
        cs = class_input(G, labels, "cpu")
        loss = objective(G(zs, cs), zs, cs, W.scene_from_z(zs, labels))
        if positional and sparsity:
            loss = loss + sparsity * G.bias.abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if step % every == 0:
            with torch.no_grad():
                row = {"step": step, "loss": loss.item(), **figures(J, G(z, c), scenes, directions)}
            rows.append(row)
            print(f"{name} {layers}{' + positional' if positional else ''} step {step}: loss {loss.item():.4f}, "
                  f"judged night {row['judged_night']:.2f}, shape kept {row['shape_kept']:.2f}, stars {row['stars']:.3f}"
                  + "".join(f", cos {n} {v:.3f}" for n, v in row["cos"].items()), flush=True)
    return rows, G


def regression(edge_weight: float):
    """The capacity check's objective: the generator's own loss against the true night renders."""
    def objective(images, z, c, scenes):
        return loss_fn(images, W.render(scenes, "night", images.shape[-1]), edge_weight)
    return objective


def directional(clips: str, G0):
    """NADA's objective: the directional loss of "a photo" -> "a night photo" from G0's image of the
    same z, under the mini CLIPs named (comma-separated, weight 1 each)."""
    guide = ClipGuide([(name, load_clip(name), 1.0) for name in clips.split(",")])
    direction = guide.text_directions(W.domain_prompt("photo"), W.domain_prompt("night"), templates=False)

    def objective(images, z, c, scenes):
        with torch.no_grad():
            frozen = G0(z, c)
        return guide.directional(frozen, images, direction)[0]
    return objective


def save_check_grid(G0, G, z, c, scenes, path: Path) -> None:
    """Rows: frozen, trained, true night (and the learned bias image, where there is one)."""
    with torch.no_grad():
        rows = [G0(z, c), G(z, c).clamp(-1, 1), W.render(scenes, "night", G0.img_resolution)]
        if isinstance(G, OutputBias):
            rows.append(G.bias.expand(len(z), -1, -1, -1).clamp(-1, 1))
    save_image(image_grid(torch.cat(rows), nrow=len(z)), path)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("generators", nargs="*", help="adapted generators: run dirs, .pt files or registry names")
    p.add_argument("--frozen", default="mini-photo-2")
    p.add_argument("--n", type=int, default=128, help="held-out scenes")
    p.add_argument("--supervised", type=int, default=0, metavar="STEPS", help="also run the capacity check")
    p.add_argument("--nada", type=int, default=0, metavar="STEPS", help="also run the directional check")
    p.add_argument("--nada-clip", default="mini-clip-2", help="the directional check's CLIPs, comma-separated")
    p.add_argument("--positional", action="store_true", help="both checks: a learned image added to the output")
    p.add_argument("--sparsity", type=float, default=0.0,
                   help="with --positional: weight of the learned image's mean |value| in the loss (grain costs)")
    p.add_argument("--grids", type=Path, help="write each check's image rows here")
    p.add_argument("--layers", default="last:3", help="the checks' layers (toRGB included in the capacity check)")
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--edge-weight", type=float, default=1.0, help="the gradient term's weight (0: plain L1)")
    p.add_argument("--every", type=int, default=250)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--clips", default="mini-clip-2,mini-clip-2-robust", help="CLIPs for cos(ΔI, ΔT); empty: none")
    p.add_argument("--out", type=Path, help="write the figures here as JSON")
    args = p.parse_args(argv)
    torch.set_grad_enabled(False)
    G0, J = load_generator(args.frozen), load_judge()
    z, labels, scenes = held_out(G0, args.n)
    c = class_input(G0, labels, "cpu")
    made_up = made_up_images(scenes, G0.img_resolution)
    generated = {"frozen generator": G0(z, c), **{source: generator_of(source)(z, c) for source in args.generators}}
    directions = text_directions([n for n in args.clips.split(",") if n], generated["frozen generator"])
    report: dict = {"made_up": {}, "generators": {}}
    print("| image | judged night | shape kept | stars |" + "".join(f" cos, {n} |" for n in directions))
    print("|---|---|---|---|" + "---|" * len(directions))
    for group, shown in (("made_up", made_up), ("generators", generated)):
        for name, images in shown.items():
            frozen = name == "frozen generator"  # its ΔI is zero: no direction to measure
            row = report[group][name] = figures(J, images, scenes, None if frozen else directions)
            print(f"| {name} | {row['judged_night']:.2f} | {row['shape_kept']:.2f} | {row['stars']:.3f} |"
                  + "".join(f" {row['cos'][n]:.3f} |" if n in row["cos"] else " - |" for n in directions))
    # (name, steps, objective, toRGB trained): the capacity check trains toRGB, the preset does not.
    checks = [("supervised", args.supervised, lambda: regression(args.edge_weight), True),
              ("nada", args.nada, lambda: directional(args.nada_clip, G0), False)]
    for name, steps, objective, include_torgb in checks:
        if not steps:
            continue
        with torch.enable_grad():
            report[name], G = fit(G0, J, z, c, scenes, objective(), name=name, layers=args.layers,
                                  include_torgb=include_torgb, steps=steps, every=args.every, lr=args.lr,
                                  positional=args.positional, sparsity=args.sparsity, seed=args.seed,
                                  directions=directions)
        if args.grids:
            args.grids.mkdir(parents=True, exist_ok=True)
            stem = name + ("-positional" if args.positional else "") + (f"-sparsity{args.sparsity:g}" if args.sparsity else "")
            stem += f"-{args.nada_clip.replace(',', '+')}" if name == "nada" else ""
            save_check_grid(G0, G, z[:8], None if c is None else c[:8], scenes[:8], args.grids / f"{stem}.png")
    if args.out:
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
