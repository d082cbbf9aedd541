"""How training starts: the loss and the size of each step's update, for a floor of the directional loss.

    python scripts/experiments/start_of_training.py --size 256 --clip ViT-B/32 --steps 60            # random weights, real shapes
    python scripts/experiments/start_of_training.py --preset mini-sketch --lr 0.01 --steps 200      # the mini world

For each step it prints the loss, the gradient norm and the update's RMS over the trained parameters
in units of the learning rate, then the mean update of steps 2-10 over that of steps 50-60.
`--floor` is the directional loss's floor on |ΔI| (`losses.directional_loss`): nada's default, or
1e-4 for the clamp that nada had before, which stalled training.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import torch

from nada_utils.adapt.config import make_config
from nada_utils.adapt.latents import sample_latents
from nada_utils.adapt.setup import build_setup, layer_plan
from nada_utils.adapt.losses import DIRECTION_FLOOR
from nada_utils.adapt.training_step import StepSettings, backward_step


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", help="a preset (default: random config-f weights of --size and --clip shapes)")
    p.add_argument("--size", type=int, default=256)
    p.add_argument("--clip", default="ViT-B/32")
    p.add_argument("--batch", type=int, default=2)
    p.add_argument("--lr", type=float)
    p.add_argument("--steps", type=int, default=60)
    p.add_argument("--seed", type=int, default=0, help="the latent sampler's seed")
    p.add_argument("--floor", type=float, default=DIRECTION_FLOOR, help=f"floor on |ΔI| (default {DIRECTION_FLOOR})")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--json", help="write every step's figures here")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.preset:
        cfg = make_config(args.preset, lr=args.lr, batch=args.batch if args.batch != 2 else None, device="cpu",
                          eval_samples=0, seed=args.seed, direction_floor=args.floor)
    else:
        cfg = make_config(None, generator=f"random:{args.size}", clip_models=(f"random:{args.clip}",), clip_weights=(1.0,),
                          batch=args.batch, lr=args.lr, device="cpu", eval_samples=0, seed=args.seed,
                          direction_floor=args.floor)
    device = torch.device("cpu")
    setup = build_setup(cfg, device)
    _, _, optimizer = layer_plan(setup.G_train, cfg)
    params = [q for g in optimizer.param_groups for q in g["params"]]
    n = sum(q.numel() for q in params)
    sampler = torch.Generator().manual_seed(cfg.seed)
    settings = StepSettings(truncation=cfg.truncation)
    G = setup.G_frozen
    rows = []
    for it in range(args.steps):
        t0 = time.perf_counter()
        # Stored noise and no style mixing, so that ΔI is exactly 0 at the first step (what the floor is for);
        # a conditional generator's latents take their classes as training's do.
        latents = sample_latents(sampler, cfg.batch, z_dim=G.z_dim, num_ws=G.num_ws, mixing=0.0, device=device,
                                 classes=setup.classes)
        loss, _ = backward_step(setup, optimizer, latents, setup.directions, settings, device)
        grad = math.sqrt(sum(float(q.grad.square().sum()) for q in params if q.grad is not None))
        before = [q.detach().clone() for q in params]
        optimizer.step()
        with torch.no_grad():
            rms = math.sqrt(sum(float((q - b).square().sum()) for q, b in zip(params, before)) / n) / cfg.lr
        rows.append({"step": it + 1, "loss": loss.item(), "grad": grad, "update_over_lr": rms,
                     "seconds": round(time.perf_counter() - t0, 2)})
        r = rows[-1]
        print(f"step {r['step']:4d}  loss {r['loss']:.4f}  grad {grad:10.3f}  update/lr {rms:.4f}  {r['seconds']} s", flush=True)

    def mean(lo, hi):
        part = [r["update_over_lr"] for r in rows[lo - 1:hi]]
        return sum(part) / len(part) if part else float("nan")

    summary = {"generator": cfg.generator, "clip": list(cfg.clip_models), "lr": cfg.lr, "batch": cfg.batch,
               "seed": cfg.seed, "floor": args.floor, "update_2_10": mean(2, 10), "update_50_60": mean(50, 60),
               "loss_at": {s: round(rows[s - 1]["loss"], 3) for s in (1, 10, 25, 50, 100, 200) if s <= len(rows)},
               "first_below_0.4": next((r["step"] for r in rows if r["loss"] < 0.4), None)}
    summary["ratio"] = summary["update_2_10"] / summary["update_50_60"]
    print(json.dumps(summary))
    if args.json:
        Path(args.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
