"""Train the mini world's StyleGAN2 (`mini-photo-2`) so that G(z) draws the photo of scene(z), corners included.

Usage: python -m nada_utils.mini_world.recipe.train_generator --out mini_photo_2.pt [--steps 12000] [--batch 32]
       [--edge-weight 1.0] [--channels 128,128,64,32,16] [--init FILE] [--conditional] [--seed 0]
       [--device cuda] [--state g_state.pt] [--stop-at STEP]

Regression, not adversarial training: every z has a known target, render(scene_from_z(z), "photo").
Plain L1 lets a small generator round every corner into a blob (docs/MINI_WORLD.md, "The world"),
because a corner is a few pixels of the loss. So the loss adds the L1 of the images' Sobel gradients
(`--edge-weight`), which weighs an outline as much as the area inside it. It is our own Generator class in the rosinality layout (64 px,
small channels), saved with save_generator like any other checkpoint. `--init` starts from another
generator of the same architecture (one that already draws colours, pages and light saves most of
the steps on a CPU). The state is saved to --state every two
minutes; the same command continues an interrupted run to the same result.

`--conditional` makes a class-conditional generator whose class is the shape (circle, square,
triangle): G(z, c) draws scene_from_z(z, shapes=c). A label gives each shape its own w from the first
step, where a step of one coordinate of z is slow to learn. `--init` may then name an unconditional
generator: its mapping reads z as before and the label's half of the first layer starts at zero, so
training starts from exactly what it drew.
"""

import argparse
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.mini_world.recipe.common import Resumable, add_run_arguments, export_generator

from nada_utils.models.generator_io import load_generator
from nada_utils.mini_world.spec import MINI_GENERATOR
from nada_utils.mini_world.world import SHAPES, render, scene_from_z
from nada_utils.models.stylegan2 import Generator


def gradients(images):
    """Horizontal and vertical differences `[N, 3, H, W-1]`, `[N, 3, H-1, W]`."""
    return images[..., :, 1:] - images[..., :, :-1], images[..., 1:, :] - images[..., :-1, :]


def loss_fn(fake, target, edge_weight):
    loss = (fake - target).abs().mean()
    if edge_weight:
        (fx, fy), (tx, ty) = gradients(fake), gradients(target)
        # Differences are about 1/20 of pixel values away from edges: scale so both terms count alike.
        loss = loss + edge_weight * 4 * ((fx - tx).abs().mean() + (fy - ty).abs().mean())
    return loss


def init_from(G, source) -> None:
    """Load generator `source`'s weights into G; an unconditional source into a conditional G keeps
    its reading of z, with the label's input weights at zero (so G draws what the source drew)."""
    state = load_generator(source).state_dict()
    if G.c_dim and "embed.weight" not in state:
        first = G.style[1].weight  # [w_dim, z_dim + w_dim], scaled by 1 / sqrt(its fan-in)
        old = state["style.1.weight"]
        widened = torch.zeros_like(first)
        widened[:, :old.shape[1]] = old * (first.shape[1] / old.shape[1]) ** 0.5
        state.update({"style.1.weight": widened, "embed.weight": G.embed.weight.detach().clone(),
                      "embed.bias": G.embed.bias.detach().clone()})
    G.load_state_dict(state)


def sample(G, n, gen, device):
    """(z, one-hot labels or None, target photos) for n latents drawn from gen; labels after z."""
    z = torch.randn(n, G.z_dim, generator=gen)
    shapes = torch.randint(len(SHAPES), (n,), generator=gen) if G.c_dim else None
    c = F.one_hot(shapes, G.c_dim).float().to(device) if G.c_dim else None
    with torch.no_grad():
        target = render(scene_from_z(z, shapes), "photo", G.img_resolution).to(device)
    return z.to(device), c, target


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_run_arguments(p, steps=12000, batch=32, lr=0.002)
    p.add_argument("--edge-weight", type=float, default=1.0)
    p.add_argument("--channels", default=",".join(map(str, MINI_GENERATOR["channels"].values())),
                   help="feature maps at 4, 8, 16, 32 and 64 px")
    p.add_argument("--init", help="start from this generator (registry name or file) instead of random weights")
    p.add_argument("--conditional", action="store_true", help="the shape is a class label (c_dim 3)")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    channels = [int(c) for c in args.channels.split(",")]
    arch = dict(MINI_GENERATOR, channels=dict(zip(MINI_GENERATOR["channels"], channels, strict=True)),
                c_dim=len(SHAPES) if args.conditional else 0)
    G = Generator(**arch).to(device).train()
    if args.init:
        init_from(G, args.init)
    mapping = [q for n, q in G.named_parameters() if n.startswith("style.")]
    synthesis = [q for n, q in G.named_parameters() if not n.startswith("style.")]
    # The mapping's equalised-lr multiplier (0.01) stores its weights 100x larger, so the same Adam
    # step moves them 100x less. Regression needs the z -> scene decoding to learn as fast as the
    # rest, so the mapping's group gets lr / lr_mlp. Betas are regression defaults, not GAN ones.
    opt = torch.optim.Adam([{"params": synthesis}, {"params": mapping, "lr": args.lr / G.lr_mlp}],
                           lr=args.lr, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, args.steps, eta_min=args.lr * 0.02)
    sampler = torch.Generator().manual_seed(args.seed)
    settings = {k: getattr(args, k) for k in ("steps", "batch", "lr", "edge_weight", "channels", "init", "seed")}
    if args.conditional:  # only then, so that unconditional runs started before the flag still resume
        settings["conditional"] = True
    state = Resumable(args.state or Path(args.out).with_suffix(".state.pt"),
                      {"G": G, "opt": opt, "sched": sched}, sampler, settings,
                      stop_after=args.stop_after, stop_at=args.stop_at)
    start = state.load()
    if args.stop_at and start >= args.stop_at:
        print(f"already at step {start} (--stop-at {args.stop_at}); {args.out} holds it")
        return
    held_z, held_c, target_held = sample(G, 256, torch.Generator().manual_seed(10_000), device)
    t0 = time.time()
    for step in range(start + 1, args.steps + 1):
        z, c, target = sample(G, args.batch, sampler, device)
        loss = loss_fn(G(z, c, noise_mode="const"), target, args.edge_weight)
        running = state.step(loss, opt, sched, step)
        if step % 500 == 0 or step == args.steps or not running:
            with torch.no_grad():
                held = (G(held_z, held_c, noise_mode="const") - target_held).abs().mean().item()
            print(f"step {step} train loss {loss.item():.4f} held-out L1 {held:.4f} ({time.time() - t0:.0f} s)", flush=True)
            export_generator(G, args.out)  # a usable file whenever the run is stopped
        if not running:
            return
    print(f"wrote {args.out} after {time.time() - t0:.0f} s on {device}")


if __name__ == "__main__":
    main()
