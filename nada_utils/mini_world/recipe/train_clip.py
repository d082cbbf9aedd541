"""Train the mini world's CLIP contrastively on renders of every domain and hard negative.

Usage: python -m nada_utils.mini_world.recipe.train_clip --out mini_clip.pt [--steps 6000] [--batch 256]
       [--patch 8] [--seed 0] [--device cuda] [--state clip_state.pt] [--init CLIP.pt] [--adv-eps 3 --adv-steps 2 --adv-share 1]

It is a `clip.model.CLIP` with small dimensions (`spec.MINI_CLIP`; `--patch` changes the patch size,
as ViT-B/32 and ViT-B/16 differ), trained on a pool of --pool random scenes, each drawn in one of
`world.ALL_DOMAINS` (the negatives "a black and white photo", "a blank page" and "a dark photo"
included), with captions such as "a pencil sketch of a circle". Images are augmented afresh each
step as a generator's differ from renders (`common.augment`) and go through the same
differentiable preprocessing that training uses (`clip_arch.clip_preprocess`). The state dict is
saved in float16, as OpenAI ships CLIP, and loads through `load_clip(path)` like a real CLIP. The
run's state is saved to --state every two minutes; the same command continues it after a stop.

`--adv-eps E` trains on adversarial images instead: each batch is first pushed, by `--adv-steps` steps
of projected gradient ascent on the loss, anywhere within an L2 ball of radius E (pixels in [-1, 1])
around the augmented renders (`--adv-share S`: only that share of each batch; the rest stays clean,
which keeps the clean zero-shot accuracy). A CLIP trained on 40,000 renders has gradients that a generator learns
to exploit: adapted samples it scores above the true target images (docs/MINI_WORLD.md). Models
trained adversarially have gradients that follow what the images show (Santurkar et al. 2019), which
is what a directional loss needs; `--init` starts from a trained CLIP, so this can be a fine-tune.
"""

import argparse
import random
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.mini_world.recipe.common import (Resumable, add_run_arguments, augment, contrastive_loss, l2_attack,
                             random_renders)

from nada_utils.fileio import atomic_torch_save
from nada_utils.mini_world.spec import MINI_CLIP
from nada_utils.mini_world.world import ALL_DOMAINS, CAPTIONS, describe, domain_prompt
from nada_utils.models.clip_arch import clip_preprocess, import_clip


def renders(n, gen, device):
    """n renders of random scenes in random domains, with (colour, shape) names and domain labels."""
    scenes, domains, images = random_renders(n, gen, device)
    return images, describe(scenes), domains


def captions(names, domains, rng):
    return [rng.choice(CAPTIONS[ALL_DOMAINS[d]]).format(c=c, s=s) for d, (c, s) in zip(domains.tolist(), names)]


@torch.no_grad()
def zero_shot(model, device, n=2100, seed=123):
    """Zero-shot domain accuracy per domain on renders of scenes training never drew (no augmentation)."""
    clip = import_clip()
    images, _, domains = renders(n, torch.Generator().manual_seed(seed), device)
    text = F.normalize(model.encode_text(clip.tokenize([domain_prompt(d) for d in ALL_DOMAINS]).to(device)).float(), dim=-1)
    img = F.normalize(model.encode_image(clip_preprocess(images, model.visual.input_resolution)).float(), dim=-1)
    right = (img @ text.T).argmax(1) == domains
    return {d: right[domains == i].float().mean().item() for i, d in enumerate(ALL_DOMAINS)}


def main():
    clip = import_clip()
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, steps=6000, batch=256, lr=1e-3, pool=40000)
    p.add_argument("--patch", type=int, default=MINI_CLIP["vision_patch_size"])
    p.add_argument("--init", help="start from this CLIP state dict (e.g. a bundled mini CLIP) instead of random weights")
    p.add_argument("--adv-eps", type=float, default=0.0, help="L2 radius of adversarial images (0: off)")
    p.add_argument("--adv-steps", type=int, default=2, help="gradient-ascent steps that find each adversarial batch")
    p.add_argument("--adv-share", type=float, default=1.0, help="share of each batch made adversarial (the rest stays clean)")
    args = p.parse_args()
    if not 0 < args.adv_share <= 1:
        p.error(f"--adv-share must be in (0, 1], got {args.adv_share}")
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    t0 = time.time()
    model = clip.model.CLIP(**{**MINI_CLIP, "vision_patch_size": args.patch}).float().to(device).train()
    if args.init:
        model.load_state_dict({k: v.float() for k, v in torch.load(args.init, map_location=device, weights_only=True).items()})
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(args.seed)
    settings = {k: getattr(args, k) for k in ("steps", "batch", "lr", "patch", "pool", "seed")}
    if args.init or args.adv_eps:  # only then, so that state files saved before these options still resume
        settings.update(init=args.init and Path(args.init).name, adv_eps=args.adv_eps, adv_steps=args.adv_steps)
        if args.adv_share != 1.0:  # likewise: adversarial state files from before the option still resume
            settings.update(adv_share=args.adv_share)
    state = Resumable(args.state or Path(args.out).with_suffix(".state.pt"),
                      {"model": model, "opt": opt, "sched": sched}, gen, settings,
                      stop_after=args.stop_after)
    pool_images, pool_names, pool_domains = renders(args.pool, torch.Generator().manual_seed(args.seed + 1), device)
    pool_images = pool_images.half()  # half the memory; augment works in float32
    print(f"rendered a pool of {args.pool} images ({time.time() - t0:.0f} s)", flush=True)
    start = state.load()
    for step in range(start + 1, args.steps + 1):
        idx = torch.randint(args.pool, (args.batch,), generator=gen)
        images = augment(pool_images[idx.to(device)].float(), gen)
        # Captions are chosen by a generator seeded from the step, so a resumed run picks the same ones.
        texts = captions([pool_names[i] for i in idx.tolist()], pool_domains[idx.to(device)], random.Random(step))
        txt = F.normalize(model.encode_text(clip.tokenize(texts).to(device)), dim=-1)

        def loss_of(x, t):
            img = F.normalize(model.encode_image(clip_preprocess(x, model.visual.input_resolution)), dim=-1)
            return contrastive_loss(img, t, texts, model.logit_scale)

        if args.adv_eps:  # the attack moves images only: the texts' embeddings are held fixed for it
            k = args.batch - round(args.adv_share * args.batch)  # the first k images stay clean
            clean = images[:k]
            moved = l2_attack(lambda x: loss_of(torch.cat([clean, x]), txt.detach()), images[k:], args.adv_eps,
                              args.adv_steps, gen)
            images = torch.cat([clean, moved])
        loss = loss_of(images, txt)
        if not state.step(loss, opt, sched, step):
            return
        if step % 250 == 0 or step == args.steps:
            model.eval()
            acc = zero_shot(model, device, n=args.eval_n)
            model.train()
            worst = min(acc, key=acc.get)
            print(f"step {step} loss {loss.item():.4f} zero-shot domain accuracy {sum(acc.values()) / len(acc):.4f} "
                  f"(worst {worst} {acc[worst]:.4f}) ({time.time() - t0:.0f} s)", flush=True)
    model = model.eval().cpu()
    print("zero-shot per domain:", {k: round(v, 4) for k, v in zero_shot(model, "cpu", n=args.eval_n).items()})
    atomic_torch_save({k: v.half() for k, v in model.state_dict().items()}, args.out)
    print(f"wrote {args.out} after {time.time() - t0:.0f} s on {device}")


if __name__ == "__main__":
    main()
