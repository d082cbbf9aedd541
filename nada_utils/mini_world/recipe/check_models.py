"""Check the mini world's bundled models against their targets, with the judge as referee.

The targets and the shipped models' figures: docs/MINI_WORLD.md, "The world".

Usage: python -m nada_utils.mini_world.recipe.check_models [--generator FILE] [--clip FILE] [--judge FILE]
       [--n 512] [--out results/mini-world-2/models.json] [--grid results/mini-world-2/frozen.png]
       [--domains results/mini-world-2/domains.png]

- generator: held-out L1 to the true photo (images in [-1, 1]); the judge's shape accuracy and share
  of "photo" on its samples at truncation 1 (targets: L1 <= 0.03, shape >= 95%, photo >= 98%);
- CLIP: zero-shot domain accuracy per domain and negative on held-out renders (target >= 98%), and
  for each preset's texts the cosine between the text direction and the true image direction (the
  mean over scenes of CLIP(true target) - CLIP(true photo), normalised embeddings), and between the
  text direction and the image directions to every other domain (the changes a generator could
  make instead: whitening the page is the direction to "blank");
- judge: domain accuracy per domain and shape accuracy on held-out renders (target >= 99%).
"""

import argparse
import json
from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.models.clip_models import load_clip
from nada_utils.models.generator_io import load_generator
from nada_utils.images import image_grid, save_image
from nada_utils.mini_world.judge import load_judge
from nada_utils.mini_world.metrics import held_out, judged
from nada_utils.mini_world.world import (
    ALL_DOMAINS,
    DOMAINS,
    SCENE_DIM,
    domain_prompt,
    render,
)
from nada_utils.models.clip_arch import clip_preprocess, import_clip
from nada_utils.models.rendering import class_input


@torch.no_grad()
def check_generator(G, judge_model, n):
    z, labels, scenes = held_out(G, n)
    c = class_input(G, labels)
    fake = torch.cat([G(z[i:i + 128], None if c is None else c[i:i + 128], noise_mode="const").clamp(-1, 1)
                      for i in range(0, n, 128)])
    l1 = (fake - render(scenes, "photo", G.img_resolution)).abs().mean().item()
    j = judged(judge_model, fake, scenes, "photo")
    return fake, {"held_out_l1": l1, "shape_accuracy": j["shape"], "judged_photo": j["target"],
                  "judged_domains": j["domains"]}


@torch.no_grad()
def check_clip(model, n):
    clip = import_clip()
    res = int(model.visual.input_resolution)
    scenes = torch.rand(n, SCENE_DIM, generator=torch.Generator().manual_seed(4321))
    text = F.normalize(model.encode_text(clip.tokenize([domain_prompt(d) for d in ALL_DOMAINS])).float(), dim=-1)
    emb = {d: F.normalize(model.encode_image(clip_preprocess(render(scenes, d, res), res)).float(), dim=-1)
           for d in ALL_DOMAINS}
    accuracy = {d: ((emb[d] @ text.T).argmax(1) == i).float().mean().item() for i, d in enumerate(ALL_DOMAINS)}
    cosines, cheats = {}, {}
    for d in DOMAINS[1:]:
        text_direction = F.normalize(text[ALL_DOMAINS.index(d)] - text[ALL_DOMAINS.index("photo")], dim=0)
        image_direction = F.normalize((emb[d] - emb["photo"]).mean(0), dim=0)
        cosines[d] = float(text_direction @ image_direction)
        # Where the text direction also points at a cheap change (turning the photo into a negative), a
        # generator can follow it there instead: these should be well below the true direction's cosine.
        cheats[d] = {other: float(text_direction @ F.normalize((emb[other] - emb["photo"]).mean(0), dim=0))
                     for other in ALL_DOMAINS if other not in ("photo", d)}
    return {"zero_shot": accuracy, "text_vs_image_direction": cosines, "text_vs_other_directions": cheats}


@torch.no_grad()
def check_judge(judge_model, n):
    scenes = torch.rand(n, SCENE_DIM, generator=torch.Generator().manual_seed(999))
    out = {}
    for d in ALL_DOMAINS:
        j = judged(judge_model, render(scenes, d), scenes, d)
        out[d] = {"domain": j["target"], "shape": None if d == "blank" else j["shape"]}  # a blank page has no shape
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--generator", default="mini-photo-2", help="a generator (registry name or file), or '' to skip")
    p.add_argument("--clip", default="mini-clip-2,mini-clip-2-robust", help="CLIPs (comma-separated), or '' to skip")
    p.add_argument("--judge", default="mini-judge")
    p.add_argument("--n", type=int, default=512)
    p.add_argument("--out", help="write the figures here (JSON)")
    p.add_argument("--grid", help="write 16 of the generator's held-out samples above their true photos here")
    p.add_argument("--domains", help="write 8 scenes in every domain and negative here (one row each)")
    args = p.parse_args()
    if args.domains:
        scenes = torch.rand(8, SCENE_DIM, generator=torch.Generator().manual_seed(3))
        scenes[:, 0] = torch.tensor([0.1, 0.5, 0.9, 0.2, 0.6, 0.8, 0.3, 0.95])  # every shape
        save_image(image_grid(torch.cat([render(scenes, d) for d in ALL_DOMAINS]), nrow=8), args.domains)
    judge_model = load_judge(args.judge)
    report = {"judge": check_judge(judge_model, args.n)}
    if args.generator:
        G = load_generator(args.generator)
        fake, report["generator"] = check_generator(G, judge_model, args.n)
        if args.grid:
            truth = render(held_out(G, 16)[2], "photo", G.img_resolution)
            save_image(image_grid(torch.cat([fake[:16], truth]), nrow=16), args.grid)
    for name in filter(None, args.clip.split(",")):
        report[f"clip {name}"] = check_clip(load_clip(name), args.n)
    print(json.dumps(report, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
