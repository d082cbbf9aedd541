"""Do grid artefacts appear when a StyleGAN3 is adapted, and which layer spec avoids them?

Usage: python scripts/experiments/stylegan3_grid_artefacts.py [--size 32] [--steps 100] [--specs all last:3 last:1]
       [--generator stylegan3-t-ffhq --clip ViT-B/32] [--out runs/sg3-grid] [--results results/stylegan3-grid]

The official StyleGAN-NADA README says that for StyleGAN3 layer freezing is not supported and grid
artefacts may appear. Here a small StyleGAN3-T with seeded random weights (no real StyleGAN3 file can
be downloaded on our build machines) is adapted with `mini-clip-2` from "a photo" to "a pencil sketch",
once per layer spec at the same budget, through the trainer users run. On 64 held-out latents the
script measures `measure.spectra`'s high-frequency share and grid share of the frozen and of each
adapted generator, and writes `results.json`, `samples.png` (rows: frozen, then each spec) and
`spectra.png` (the log power spectra, and each spec's change from the frozen one).
Runs are reused when the script runs again. `--generator` and `--clip` run the same measurement on a
real StyleGAN3 (a registry name or a pickle; a GPU is advisable) with a real CLIP.
"""

import argparse
import json
import sys
from pathlib import Path

import torch

from nada_utils import load_generator, save_generator
from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import is_finished
from nada_utils.adapt.trainer import train
from nada_utils.fileio import atomic_write_text
from nada_utils.images import image_grid, save_image
from nada_utils.measure.spectra import grid_share, high_frequency_share, power_spectrum
from nada_utils.mini_world.captions import PROMPTS
from nada_utils.models.builtin_models import random_stylegan3
from nada_utils.models.rendering import held_out_z

# Small enough for a CPU: 4096 / 64 channels, 64-dim z and w; NVlabs' layer count, filters and margins.
SMALL = dict(channel_base=4096, channel_max=64, z_dim=64, w_dim=64)


def plot_spectra(spectra: dict, out: Path) -> None:
    from matplotlib.figure import Figure

    names = list(spectra)
    fig = Figure(figsize=(2.4 * len(names), 4.8), dpi=100, layout="constrained")
    base = spectra[names[0]].clamp(min=1e-12).log10()
    for i, name in enumerate(names):
        log = spectra[name].clamp(min=1e-12).log10()
        ax = fig.add_subplot(2, len(names), i + 1)
        ax.imshow(log, cmap="magma")
        ax.set_title(f"{name}: log10 power", fontsize=8)
        ax.axis("off")
        if i:
            ax = fig.add_subplot(2, len(names), len(names) + i + 1)
            ax.imshow(log - base, cmap="RdBu_r", vmin=-3, vmax=3)
            ax.set_title(f"{name} - frozen", fontsize=8)
            ax.axis("off")
    with open(out, "wb") as f:
        fig.savefig(f, format="png")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=32)
    p.add_argument("--steps", type=int, default=100)
    p.add_argument("--batch", type=int, default=4)
    p.add_argument("--specs", nargs="+", default=["all", "last:3", "last:1"])
    p.add_argument("--n", type=int, default=64, help="held-out latents measured")
    p.add_argument("--generator", help="a StyleGAN3 to adapt (default: a small random StyleGAN3-T of --size px)")
    p.add_argument("--clip", default="mini-clip-2")
    p.add_argument("--out", type=Path, default=Path("runs/sg3-grid"))
    p.add_argument("--results", type=Path, default=Path("results/stylegan3-grid"))
    args = p.parse_args()

    args.out.mkdir(parents=True, exist_ok=True)
    frozen_path = args.generator or args.out / f"random-sg3-t-{args.size}.pt"
    if not args.generator and not frozen_path.is_file():
        save_generator(random_stylegan3("T", args.size, **SMALL), frozen_path)
    G = load_generator(frozen_path)
    z = held_out_z(args.n, G.z_dim)
    generators = {"frozen": G}
    for spec in args.specs:
        run = args.out / spec.replace(":", "-")
        cfg = make_config(None, generator=str(frozen_path), clip_models=(args.clip,), clip_weights=(1.0,),
                          source_text=PROMPTS["photo"], target_text=PROMPTS["sketch"], templates=False, layers=spec, steps=args.steps,
                          batch=args.batch, lr=0.002, eval_samples=0, sample_every=0, checkpoint_every=0)
        if not is_finished(run, args.steps):
            train(cfg, run, resume=run.exists())
        generators[spec] = load_generator(run / "generator.pt")
    rows, spectra, images = {}, {}, []
    with torch.no_grad():
        for name, g in generators.items():
            x = g(z).clamp(-1, 1)
            rows[name] = {"high_frequency_share": high_frequency_share(x), "grid_share": grid_share(x)}
            spectra[name] = power_spectrum(x)
            images.append(x[:8])
            print(f"{name:>8}: high-frequency share {rows[name]['high_frequency_share']:.4f}, "
                  f"grid share {rows[name]['grid_share']:.4f}", flush=True)
    args.results.mkdir(parents=True, exist_ok=True)
    save_image(image_grid(torch.cat(images), nrow=8), args.results / "samples.png")
    plot_spectra(spectra, args.results / "spectra.png")
    summary = {"generator": args.generator or f"random StyleGAN3-T, {args.size} px, {SMALL}", "clip": args.clip,
               "texts": [PROMPTS["photo"], PROMPTS["sketch"]], "steps": args.steps, "batch": args.batch, "lr": 0.002,
               "held_out": args.n, "rows": rows}
    atomic_write_text(args.results / "results.json", json.dumps(summary, indent=2) + "\n")
    print(f"wrote {args.results}/results.json, samples.png (rows: {', '.join(generators)}) and spectra.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
