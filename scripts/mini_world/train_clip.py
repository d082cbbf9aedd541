"""Train the mini CLIP contrastively on renders of every domain with template captions.

Usage: python scripts/mini_world/train_clip.py --out nada_utils/mini_world/weights/mini_clip.pt
       [--steps 6000] [--batch 256] [--seed 0] [--device cuda]

It is a `clip.model.CLIP` with small dimensions (nada_utils/mini_world/spec.py), trained on
random scenes drawn in photo, sketch, cartoon and night with captions such as "a pencil sketch of a
circle". Images go through the same differentiable preprocessing that training uses
(`clip_arch.clip_preprocess`). The state dict is saved in float16, as OpenAI ships CLIP, and it loads
through `load_clip(path)` like a real CLIP.
"""

import argparse
import random
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from training_common import contrastive_loss  # noqa: E402

from nada_utils.fileio import atomic_torch_save  # noqa: E402
from nada_utils.mini_world.renderer import DOMAINS, SCENE_DIM, describe, render  # noqa: E402
from nada_utils.mini_world.spec import DOMAIN_CAPTIONS, MINI_CLIP, domain_prompt  # noqa: E402
from nada_utils.models.clip_arch import clip_preprocess  # noqa: E402


def batch(n, gen, rng, device, augment=True):
    """n renders of random scenes in random domains, with their captions."""
    scenes = torch.rand(n, SCENE_DIM, generator=gen).to(device)
    domains = torch.randint(len(DOMAINS), (n,), generator=gen)
    images = torch.empty(n, 3, MINI_CLIP["image_resolution"], MINI_CLIP["image_resolution"], device=device)
    for d, name in enumerate(DOMAINS):
        idx = (domains == d).nonzero().flatten().to(device)
        if len(idx):
            images[idx] = render(scenes[idx], name, MINI_CLIP["image_resolution"])
    if augment:
        # Generators draw slightly soft, slightly noisy images; the CLIP must not hinge on crisp pixels.
        soft = torch.rand(n, generator=gen).to(device) < 0.4
        small = F.interpolate(F.avg_pool2d(images, 2), scale_factor=2, mode="bilinear", align_corners=False)
        images = torch.where(soft.view(n, 1, 1, 1), small, images)
        images = images + 0.03 * torch.randn(images.shape, generator=gen).to(device)
    names = describe(scenes.cpu())
    captions = [rng.choice(DOMAIN_CAPTIONS[DOMAINS[d]]).format(c=c, s=s) for d, (c, s) in zip(domains.tolist(), names)]
    return images.clamp(-1, 1), captions, domains


@torch.no_grad()
def zero_shot_accuracy(model, device, n=2000, seed=123):
    import clip

    gen, rng = torch.Generator().manual_seed(seed), random.Random(seed)
    images, _, domains = batch(n, gen, rng, device, augment=False)
    text = F.normalize(model.encode_text(clip.tokenize([domain_prompt(d) for d in DOMAINS]).to(device)).float(), dim=-1)
    img = F.normalize(model.encode_image(clip_preprocess(images, MINI_CLIP["image_resolution"])).float(), dim=-1)
    return ((img @ text.T).argmax(1).cpu() == domains).float().mean().item()


def main():
    import clip

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=6000)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = p.parse_args()
    torch.manual_seed(args.seed)
    device = torch.device(args.device)
    model = clip.model.CLIP(**MINI_CLIP).float().to(device).train()
    opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=0.05)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=args.steps, pct_start=max(0.05, 2 / args.steps))
    gen, rng = torch.Generator().manual_seed(args.seed), random.Random(args.seed)
    t0 = time.time()
    for step in range(1, args.steps + 1):
        images, captions, _ = batch(args.batch, gen, rng, device)
        img = F.normalize(model.encode_image(clip_preprocess(images, MINI_CLIP["image_resolution"])), dim=-1)
        txt = F.normalize(model.encode_text(clip.tokenize(captions).to(device)), dim=-1)
        loss = contrastive_loss(img, txt, captions, model.logit_scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if step % 500 == 0 or step == args.steps:
            model.eval()
            acc = zero_shot_accuracy(model, device)
            model.train()
            print(f"step {step} loss {loss.item():.4f} zero-shot domain accuracy {acc:.4f} ({time.time() - t0:.0f} s)", flush=True)
    model = model.eval().cpu()
    atomic_torch_save({k: v.half() for k, v in model.state_dict().items()}, args.out)
    print(f"wrote {args.out} after {time.time() - t0:.0f} s on {device}")


if __name__ == "__main__":
    main()
