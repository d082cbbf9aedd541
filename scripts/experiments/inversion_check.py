"""Measure inversion and text editing in the mini world, where every image's true sketch is known.

Usage: python scripts/experiments/inversion_check.py [--scenes 9] [--steps 500] [--latent w+] [--adapted RUN]
       [--out results/mini-inversion]

For held-out scenes of the world (latents no training run ever drew), it renders the photo with
the world's renderer (`world.render`, not with the generator), inverts it into the run's generator
(`mini-photo-2`) through the same code as `python -m nada_utils invert` (LPIPS when cached, else the
CLIP + pixel fallback with mini-clip-2), renders the latent with the adapted sketch generator, and
scores the adapted images against the scenes' TRUE sketches with the mini world's metrics
(`metrics.score`: the judge's `judged_target` and `shape_kept`, `edge_f1`, the shape's and the
page's `gap_closed`), the reconstructions standing where the frozen samples stand in a run.
Then it edits each latent with `python -m nada_utils edit`'s code towards "a photo of a <colour> <shape>",
the colour half-way round the colour wheel, and measures against the true recoloured render how
much of the shape's pixel gap the edit closes (the page does not change), and whether the judge
still sees a photo of the same shape. Writes results/mini-inversion/{inversion.png, edits.png,
metrics.json}. Without --adapted it trains (or resumes) the mini-sketch preset in runs/mini-sketch first.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from nada_utils import load_clip, load_generator
from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.run_dir import adapted_generator_path, read_config
from nada_utils.fileio import atomic_write_text
from nada_utils.images import image_grid, save_image
from nada_utils.invert.inversion import apply_adapted, invert_image, perceptual_models
from nada_utils.invert.latent_edit import edit_latent
from nada_utils.mini_world.judge import load_judge
from nada_utils.mini_world.metrics import held_out, judged, region_gap_closed, score
from nada_utils.mini_world.world import SCENE, describe, render, shape_mask

HUE = SCENE.index("hue")


def recoloured(scene: torch.Tensor) -> tuple[torch.Tensor, str]:
    """The same scene with its hue turned half-way round the wheel, and the caption that names it."""
    new = scene.clone()
    new[HUE] = (scene[HUE] + 0.5) % 1.0
    colour, shape = describe(new[None])[0]
    return new, f"a photo of {'an' if colour[0] in 'aeiou' else 'a'} {colour} {shape}"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--scenes", type=int, default=9)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--latent", choices=("w+", "w"), default="w+", help="the space projected into, as for invert")
    p.add_argument("--edit-steps", type=int, default=100)
    p.add_argument("--adapted", help="an adapted mini-sketch run dir (default: train runs/mini-sketch)")
    p.add_argument("--out", default="results/mini-inversion")
    args = p.parse_args()
    torch.manual_seed(0)

    if args.adapted is None:
        from nada_utils.adapt.config import make_config
        from nada_utils.adapt.run_dir import is_finished, run_exists
        from nada_utils.adapt.trainer import train

        args.adapted, cfg = "runs/mini-sketch", make_config("mini-sketch")
        if not is_finished(args.adapted, cfg.steps):
            train(cfg, args.adapted, resume=run_exists(args.adapted))
    cfg = read_config(Path(args.adapted))
    G, A = load_generator(cfg.generator), load_generator(adapted_generator_path(args.adapted)[0])
    clip_name = cfg.clip_models[0]
    lpips, fallback_clip, note = perceptual_models("auto", clip_name)
    guide = ClipGuide([(clip_name, load_clip(clip_name), 1.0)])
    judge_model = load_judge()
    print(note)
    _, _, scenes = held_out(G, args.scenes)  # the latents' scenes; inversion sees only their rendered photos
    res = G.img_resolution
    photos, sketches, masks = render(scenes, "photo", res), render(scenes, "sketch", res), shape_mask(scenes, res)
    recs, adapted, edited, truths, texts, psnr = [], [], [], [], [], []
    t0 = time.time()
    for i in range(args.scenes):
        inv = apply_adapted(invert_image(G, photos[i:i + 1], steps=args.steps, latent=args.latent, lpips=lpips,
                                         clip_model=fallback_clip),
                            {"sketch": A})
        recs.append(inv.reconstruction.clamp(-1, 1))
        adapted.append(inv.renders["sketch"].clamp(-1, 1))
        new_scene, text = recoloured(scenes[i])
        truths.append(render(new_scene[None], "photo", res))
        edit = edit_latent(G, inv.result.ws, text, guide, steps=args.edit_steps, noise=inv.result.noise)
        with torch.no_grad():
            edited.append(G.synthesis(edit.ws, noise=inv.result.noise).clamp(-1, 1))
        texts.append(text)
        psnr.append(inv.metrics["psnr"])
        print(f"scene {i}: PSNR {psnr[-1]:.2f} dB; edit '{text}': similarity {edit.similarity_before:.3f} -> "
              f"{edit.similarity_after:.3f}", flush=True)
    recs, adapted, edited, truths = (torch.cat(x) for x in (recs, adapted, edited, truths))
    out = Path(args.out)
    save_image(image_grid(torch.stack([photos, recs, adapted, sketches], 1).flatten(0, 1), nrow=4), out / "inversion.png")
    save_image(image_grid(torch.stack([recs, edited, truths], 1).flatten(0, 1), nrow=3), out / "edits.png")

    with torch.no_grad():
        sketch = score(recs, adapted, scenes, "sketch", judge_model)
        edit_gap = region_gap_closed(recs, edited, truths, masks)
        kept = judged(judge_model, edited, scenes, "photo")
    summary = {"scenes": args.scenes, "steps": args.steps, "latent": args.latent, "loss": inv.metrics["loss"], "adapted": str(args.adapted),
               "generator": cfg.generator, "psnr_min": min(psnr), "psnr_mean": sum(psnr) / len(psnr),
               "sketch": sketch, "edit_steps": args.edit_steps,
               "edit_gap_closed_shape": edit_gap["gap_closed_shape"], "edit_judged_photo": kept["target"],
               "edit_shape_kept": kept["shape"], "edit_texts": texts, "psnr": psnr,
               "seconds": round(time.time() - t0)}
    atomic_write_text(out / "metrics.json", json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("edit_texts", "psnr")}, indent=2))
    print(f"wrote {out}/inversion.png (columns: photo, reconstruction, adapted, true sketch), edits.png "
          f"(reconstruction, edited, true recoloured render) and metrics.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
