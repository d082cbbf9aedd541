"""Train the mini StyleGAN2 so that G(z) renders the photo of scene(z): a generator with ground truth.

Usage: python scripts/mini_world/train_generator.py --out nada_utils/mini_world/weights/mini_photo_g.pt
       [--steps 12000] [--batch 64] [--seed 0] [--device cuda]

Regression, not adversarial training: every z has a known target, render(scene_from_z(z), "photo"),
and the generator is trained with an L1 loss to draw exactly that. It is our own Generator class in
the rosinality layout (64 px, small channels), saved with save_generator like any other checkpoint.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_common import export_generator  # noqa: E402

from nada_utils.mini_world.renderer import render, scene_from_z  # noqa: E402
from nada_utils.mini_world.spec import MINI_GENERATOR  # noqa: E402
from nada_utils.models.stylegan2 import Generator  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=12000)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--channels", help="override the spec's channels, e.g. 4:256,8:256,16:128,32:64,64:32")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    arch = dict(MINI_GENERATOR)
    if args.channels:
        arch["channels"] = {int(k): int(v) for k, v in (kv.split(":") for kv in args.channels.split(","))}
    G = Generator(**arch).to(device).train()
    mapping = [p for n, p in G.named_parameters() if n.startswith("style.")]
    synthesis = [p for n, p in G.named_parameters() if not n.startswith("style.")]
    # The mapping's equalised-lr multiplier (0.01) stores its weights 100x larger, so the same Adam
    # step moves them 100x less. Regression needs the z -> scene decoding to learn as fast as the
    # rest, so the mapping's group gets lr / lr_mlp. Betas are regression defaults, not GAN ones.
    opt = torch.optim.Adam([{"params": synthesis}, {"params": mapping, "lr": args.lr / G.lr_mlp}],
                           lr=args.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr * 0.02)
    sampler = torch.Generator(device="cpu").manual_seed(args.seed)
    held_out = torch.randn(256, G.z_dim, generator=torch.Generator().manual_seed(10_000)).to(device)
    target_held = render(scene_from_z(held_out), "photo", G.img_resolution)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        z = torch.randn(args.batch, G.z_dim, generator=sampler).to(device)
        with torch.no_grad():
            target = render(scene_from_z(z), "photo", G.img_resolution)
        loss = (G(z, noise_mode="const") - target).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 1000 == 0 or step == args.steps:
            with torch.no_grad():
                held = (G(held_out, noise_mode="const") - target_held).abs().mean().item()
            print(f"step {step} train L1 {loss.item():.4f} held-out L1 {held:.4f} ({time.time() - t0:.0f} s)", flush=True)
        if step % 2000 == 0 or step == args.steps:  # a usable file even if the run is cut short
            export_generator(G, args.out)
    print(f"wrote {args.out} after {time.time() - t0:.0f} s on {device}")


if __name__ == "__main__":
    main()
