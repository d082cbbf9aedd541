"""Train the mini world's judge: a small CNN naming the domain (targets and hard negatives) and the shape.

Usage: python -m nada_utils.mini_world.recipe.train_judge --out nada_utils/mini_world/weights/mini_judge.pt
       [--steps 1000] [--batch 128] [--seed 0] [--device cuda] [--state judge_state.pt]

It sees renders of `world` only: a pool of --pool random scenes, each in a random domain of
ALL_DOMAINS (rendered once, from the seed), drawn in batches and augmented afresh as a generator's
images differ from renders (`common.augment`: blur, noise, colour drift). The run saves its
state to --state every two minutes; the same command continues it after an interruption. The file it
writes is float16 weights plus the architecture, loaded by `mini_world.judge.load_judge`.
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.mini_world.recipe.common import Resumable, add_run_arguments, augment, random_renders

from nada_utils.fileio import atomic_torch_save
from nada_utils.mini_world.judge import JUDGE, Judge
from nada_utils.mini_world.world import ALL_DOMAINS, shape_index

BLANK = ALL_DOMAINS.index("blank")  # a blank page has no shape to name


def batch(n, gen, device):
    """n renders of random scenes in random domains, their domain and shape labels."""
    scenes, domains, images = random_renders(n, gen, device)
    shapes = torch.where(domains == BLANK, -100, shape_index(scenes))  # -100: cross_entropy's ignore_index
    return images, domains, shapes


@torch.no_grad()
def held_out_accuracy(model, device, n=2100, seed=123, augmented=False):
    """Domain accuracy per domain, and shape accuracy, on renders of scenes training never drew."""
    gen = torch.Generator().manual_seed(seed)
    images, domains, shapes = batch(n, gen, device)
    if augmented:
        images = augment(images, gen)
    d, s = model(images)
    right = d.argmax(1) == domains
    per_domain = {name: right[domains == i].float().mean().item() for i, name in enumerate(ALL_DOMAINS)}
    has_shape = shapes >= 0
    return per_domain, (s.argmax(1)[has_shape] == shapes[has_shape]).float().mean().item(), right.float().mean().item()


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, steps=1000, batch=128, lr=2e-3, pool=20000)
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    t0 = time.time()
    model = Judge(**JUDGE).to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=0.05)
    gen = torch.Generator().manual_seed(args.seed)
    settings = {k: getattr(args, k) for k in ("steps", "batch", "lr", "seed", "pool")}
    pool = batch(args.pool, torch.Generator().manual_seed(args.seed + 1), device)
    print(f"rendered a pool of {args.pool} images ({time.time() - t0:.0f} s)", flush=True)
    state = Resumable(args.state or Path(args.out).with_suffix(".state.pt"),
                      {"model": model, "opt": opt, "sched": sched}, gen, settings,
                      stop_after=args.stop_after)
    start = state.load()
    for step in range(start + 1, args.steps + 1):
        idx = torch.randint(args.pool, (args.batch,), generator=gen).to(device)
        images, domains, shapes = (t[idx] for t in pool)
        d, s = model(augment(images, gen))
        loss = F.cross_entropy(d, domains) + F.cross_entropy(s, shapes, ignore_index=-100)
        if not state.step(loss, opt, sched, step):
            return
        if step % 250 == 0 or step == args.steps:
            model.eval()
            per_domain, shape_acc, acc = held_out_accuracy(model, device, n=args.eval_n)
            model.train()
            worst = min(per_domain, key=per_domain.get)
            print(f"step {step} loss {loss.item():.4f} held-out domain {acc:.4f} (worst {worst} {per_domain[worst]:.4f}) "
                  f"shape {shape_acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    model = model.eval().cpu()
    per_domain, shape_acc, acc = held_out_accuracy(model, "cpu", n=args.eval_n)
    per_aug, shape_aug, acc_aug = held_out_accuracy(model, "cpu", n=args.eval_n, augmented=True)
    print("held-out renders: domain", {k: round(v, 4) for k, v in per_domain.items()}, f"shape {shape_acc:.4f}")
    print("held-out, augmented: domain", {k: round(v, 4) for k, v in per_aug.items()}, f"shape {shape_aug:.4f}")
    atomic_torch_save({"arch": dict(JUDGE), "state_dict": {k: v.half() for k, v in model.state_dict().items()}}, args.out)
    print(f"wrote {args.out} after {time.time() - t0:.0f} s on {device}")


if __name__ == "__main__":
    main()
