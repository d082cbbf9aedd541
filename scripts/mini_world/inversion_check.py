"""Measure inversion and text editing in the mini world, where every image's true sketch is known.

Usage: python scripts/mini_world/inversion_check.py [--scenes 8] [--steps 500] [--adapted RUN]
       [--out results/mini-inversion]

For held-out scenes (latents no training run ever drew), it renders the photo with the procedural
renderer (not with the generator), inverts it into `mini-photo` through the same code as
`python -m nada_utils invert` (LPIPS when cached, else the CLIP + pixel fallback with mini-clip),
renders the latent with the adapted sketch generator, and measures:
  - PSNR of the reconstruction (and LPIPS or the CLIP similarity);
  - gap_closed: how much of the distance from the reconstruction to the scene's TRUE sketch render
    the adapted generator removes (1 - |adapted - sketch| / |reconstruction - sketch|).
Then it edits each latent with `python -m nada_utils edit`'s code towards "a photo of a <other colour>
<same shape>" and measures, against ground truth again, how much of the distance from the
reconstruction to the true render of the recoloured scene the edit removes (edit_gap_closed), plus
the mini CLIP's similarity to the text before and after. Writes results/mini-inversion/{inversion.png, edits.png, metrics.json}. Without --adapted
it trains (or resumes) the first world's mini-sketch in runs/mini-sketch first.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nada_utils import load_clip, load_generator  # noqa: E402
from nada_utils.adapt.clip_guide import ClipGuide  # noqa: E402
from nada_utils.adapt.run_dir import adapted_generator_path  # noqa: E402
from nada_utils.fileio import atomic_write_text  # noqa: E402
from nada_utils.images import image_grid, save_image  # noqa: E402
from nada_utils.invert.inversion import apply_adapted, invert_image, perceptual_models  # noqa: E402
from nada_utils.invert.latent_edit import edit_latent  # noqa: E402
from nada_utils.mini_world.metrics import gap_closed
from nada_utils.mini_world.renderer import COLOURS, describe, render, scene_from_z  # noqa: E402
from nada_utils.models.rendering import held_out_z  # noqa: E402


def recoloured(scene: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The same scene with its colour moved half-way round the colour list, and the caption that names it."""
    colour, shape = describe(scene[None])[0]
    index = ([c for c, _ in COLOURS].index(colour) + len(COLOURS) // 2) % len(COLOURS)
    new = scene.clone()
    new[1] = (index + 0.5) / len(COLOURS)  # scene slot 1 picks the colour (renderer.describe)
    name = COLOURS[index][0]
    return new, f"a photo of {'an' if name[0] in 'aeiou' else 'a'} {name} {shape}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=8)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--edit-steps", type=int, default=100)
    p.add_argument("--adapted", help="an adapted mini-sketch run dir or .pt (default: train runs/mini-sketch)")
    p.add_argument("--out", default="results/mini-inversion")
    args = p.parse_args()

    if args.adapted is None:
        from nada_utils.adapt.config import FIRST_WORLD_SKETCH, make_config
        from nada_utils.adapt.run_dir import is_finished, run_exists
        from nada_utils.adapt.trainer import train

        args.adapted, cfg = "runs/mini-sketch", make_config("mini-sketch", **FIRST_WORLD_SKETCH)
        if not is_finished(args.adapted, cfg.steps):
            train(cfg, args.adapted, resume=run_exists(args.adapted))
    G, A = load_generator("mini-photo"), load_generator(adapted_generator_path(args.adapted)[0])
    clip_model = load_clip("mini-clip")
    lpips, fallback_clip, note = perceptual_models("auto", "mini-clip")
    guide = ClipGuide([("mini-clip", clip_model, 1.0)])
    print(note)
    scenes = scene_from_z(held_out_z(args.scenes, G.z_dim))
    photos, sketches = render(scenes, "photo", G.img_resolution), render(scenes, "sketch", G.img_resolution)
    rows, edit_rows, per_scene = [], [], []
    t0 = time.time()
    for i in range(args.scenes):
        inv = apply_adapted(invert_image(G, photos[i:i + 1], steps=args.steps, lpips=lpips, clip_model=fallback_clip),
                            {"sketch": A})
        adapted = inv.renders["sketch"].clamp(-1, 1)
        rec = inv.reconstruction.clamp(-1, 1)
        new_scene, text = recoloured(scenes[i])
        truth = render(new_scene[None], "photo", G.img_resolution)
        edit = edit_latent(G, inv.result.ws, text, guide, steps=args.edit_steps, noise=inv.result.noise)
        with torch.no_grad():
            edited = G.synthesis(edit.ws, noise=inv.result.noise).clamp(-1, 1)
        per_scene.append({**{k: v for k, v in inv.metrics.items() if k not in ("loss", "latent", "steps")},
                          "gap_closed": gap_closed(rec, adapted, sketches[i:i + 1]), "edit_text": text,
                          "edit_gap_closed": gap_closed(rec, edited, truth),
                          "edit_similarity": [edit.similarity_before, edit.similarity_after], "edit_l2": edit.l2})
        rows += [photos[i:i + 1], rec, adapted, sketches[i:i + 1]]
        edit_rows += [rec, edited, truth]
        print(f"scene {i}: PSNR {per_scene[-1]['psnr']:.2f} dB, gap_closed {per_scene[-1]['gap_closed']:.3f}; "
              f"edit '{text}': similarity {edit.similarity_before:.3f} -> {edit.similarity_after:.3f}, "
              f"edit_gap_closed {per_scene[-1]['edit_gap_closed']:.3f}", flush=True)
    out = Path(args.out)
    save_image(image_grid(torch.cat(rows), nrow=4), out / "inversion.png")
    save_image(image_grid(torch.cat(edit_rows), nrow=3), out / "edits.png")

    def mean(key, j=None):
        return sum(s[key] if j is None else s[key][j] for s in per_scene) / len(per_scene)

    summary = {"scenes": args.scenes, "steps": args.steps, "loss": inv.metrics["loss"], "adapted": str(args.adapted),
               "psnr_min": min(s["psnr"] for s in per_scene), "psnr_mean": mean("psnr"),
               "gap_closed_min": min(s["gap_closed"] for s in per_scene), "gap_closed_mean": mean("gap_closed"),
               "edit_steps": args.edit_steps, "edit_gap_closed_mean": mean("edit_gap_closed"),
               "edit_similarity_mean": [mean("edit_similarity", 0), mean("edit_similarity", 1)],
               "seconds": round(time.time() - t0), "per_scene": per_scene}
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "per_scene"}, indent=2))
    print(f"wrote {out}/inversion.png (columns: photo, reconstruction, adapted, true sketch), edits.png "
          f"(reconstruction, edited, true recoloured render) and metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
