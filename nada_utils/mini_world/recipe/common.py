"""What the mini world's training scripts share: resumable state and the augmentations of renders.

A script that runs for hours on a CPU must survive being stopped: `Resumable` saves the model, the
optimiser, the schedule, the data generator's state and the step atomically every few minutes, and
the same command run again continues from there, to the same result as an uninterrupted run
(`--stop-after N` ends a sitting on purpose after N steps).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.fileio import atomic_torch_save


def add_run_arguments(p, *, steps: int, batch: int, lr: float, pool: int | None = None) -> None:
    """The arguments every training script takes, with the script's defaults for steps, batch and lr;
    with `pool`, those of scripts that draw from a pool of renders and evaluate on held-out ones."""
    p.add_argument("--out", required=True, help="the model file to write")
    p.add_argument("--steps", type=int, default=steps)
    p.add_argument("--batch", type=int, default=batch)
    p.add_argument("--lr", type=float, default=lr)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--state", help="where the resumable state lives (default: OUT with .state.pt)")
    p.add_argument("--stop-after", type=int, help="stop (state saved) after this many steps of this sitting")
    p.add_argument("--stop-at", type=int, help="stop (state saved) at this step of the run, however many sittings it took")
    if pool is not None:
        p.add_argument("--pool", type=int, default=pool, help="renders drawn from (rendered once at the start)")
        p.add_argument("--eval-n", type=int, default=2100, help="held-out renders of each evaluation")


def random_renders(n: int, gen: torch.Generator, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """n random scenes of the world, each in a random domain of ALL_DOMAINS: (scenes, domains, images)."""
    from nada_utils.mini_world.world import ALL_DOMAINS, SCENE_DIM, render_mixed

    scenes = torch.rand(n, SCENE_DIM, generator=gen).to(device)
    domains = torch.randint(len(ALL_DOMAINS), (n,), generator=gen).to(device)
    images = torch.cat([render_mixed(scenes[i:i + 512], domains[i:i + 512]) for i in range(0, n, 512)])
    return scenes, domains, images


def contrastive_loss(img: torch.Tensor, txt: torch.Tensor, texts: list[str], logit_scale: torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric cross-entropy over a batch of normalised image and text embeddings, where
    identical captions are all positives (many scenes share "a blank page" or "a pencil sketch")."""
    logits = logit_scale.exp().clamp(max=100) * img @ txt.T
    ids = {c: i for i, c in enumerate(dict.fromkeys(texts))}
    cid = torch.tensor([ids[c] for c in texts], device=img.device)
    same = (cid[:, None] == cid[None, :]).float()
    target = same / same.sum(1, keepdim=True)
    return (torch.sum(-target * F.log_softmax(logits, 1), 1).mean()
            + torch.sum(-target * F.log_softmax(logits.T, 1), 1).mean()) / 2


def l2_attack(loss_of, images: torch.Tensor, eps: float, steps: int, gen: torch.Generator) -> torch.Tensor:
    """Images within L2 distance `eps` of `images` (each image on its own, pixels in [-1, 1]) that raise
    `loss_of(images)`: a random start inside the ball, then `steps` normalised gradient steps of
    0.6 eps, each projected back into the ball and the pixel range. The model's own gradients are
    not touched (only the perturbation's are taken)."""
    n = images.shape[0]

    def norms(x):  # each image's L2 norm, shaped to scale it
        return x.flatten(1).norm(dim=1).clamp_min(1e-12).view(n, 1, 1, 1)

    def project(delta):
        delta = delta * (eps / norms(delta)).clamp(max=1)
        return (images + delta).clamp(-1, 1) - images

    start = torch.randn(images.shape, generator=gen).to(images.device)
    radius = eps * torch.rand(n, generator=gen).to(images.device).view(n, 1, 1, 1)
    delta = project(start / norms(start) * radius)
    for _ in range(steps):
        delta.requires_grad_(True)
        (grad,) = torch.autograd.grad(loss_of(images + delta), delta)
        delta = project(delta.detach() + 0.6 * eps * grad / norms(grad))
    return (images + delta).detach()


class Resumable:
    """Training state saved to `path` (`objects`: things with state_dict; `gen`: the data's torch.Generator).

    `settings` (the command's arguments that define the result) are saved too; resuming with other
    settings is refused, as it would no longer be the run that was started.
    """

    def __init__(self, path: str | Path, objects: dict, gen: torch.Generator, settings: dict, *,
                 stop_after: int | None = None, stop_at: int | None = None, every_s: float = 120.0):
        self.path, self.objects, self.gen, self.settings = Path(path), objects, gen, dict(settings)
        self.stop_after, self.stop_at, self.every_s, self._last = stop_after, stop_at, every_s, time.time()
        self.start = 0

    def load(self) -> int:
        """The step to continue after (0 for a fresh start)."""
        if not self.path.is_file():
            return 0
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state["settings"] != self.settings:
            raise SystemExit(f"{self.path} was started with {state['settings']}, not {self.settings}; "
                             f"delete it to start again, or rerun with the same arguments")
        for name, obj in self.objects.items():
            obj.load_state_dict(state[name])
        self.gen.set_state(state["gen"])
        print(f"resumed {self.path} at step {state['step']}", flush=True)
        self.start = int(state["step"])
        return self.start

    def step(self, loss: torch.Tensor, opt, sched, step: int) -> bool:
        """One optimiser step on `loss`, then the state saved when due; False when the sitting should stop
        (`stop_after` steps of this sitting done, or step `stop_at` reached; state saved) and the script
        should return."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        total = self.settings["steps"]
        if step < total and ((self.stop_after and step - self.start >= self.stop_after)
                             or (self.stop_at and step >= self.stop_at)):
            self.save(step, force=True)
            print(f"stopped at step {step} of {total}; run the same command again to continue", flush=True)
            return False
        self.save(step, force=step == total)
        return True

    def save(self, step: int, *, force: bool = False) -> None:
        if not force and time.time() - self._last < self.every_s:
            return
        state = {name: obj.state_dict() for name, obj in self.objects.items()}
        state.update(step=step, gen=self.gen.get_state(), settings=self.settings)
        atomic_torch_save(state, self.path)
        self._last = time.time()


def export_generator(G, out) -> None:
    """Save a CPU copy of generator G with its mean w, in the rosinality format."""
    import copy

    from nada_utils.models.generator_io import save_generator

    H = copy.deepcopy(G).eval().requires_grad_(False).cpu()
    H.w_avg.copy_(H.estimate_w_avg())
    save_generator(H, out)


def _gaussian_blur(images: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Blur each image `[N, C, H, W]` with its own sigma `[N]` (pixels), reflect-padded."""
    n, c, h, w = images.shape
    x = torch.arange(-3, 4, dtype=images.dtype, device=images.device)
    k = torch.exp(-x[None] ** 2 / (2 * sigma[:, None].clamp(min=1e-3) ** 2))
    k = (k / k.sum(1, keepdim=True)).repeat_interleave(c, 0)  # [N*C, 7]
    flat = F.pad(images.reshape(1, n * c, h, w), (3, 3, 3, 3), mode="reflect")
    flat = F.conv2d(flat, k.view(n * c, 1, 1, 7), groups=n * c)
    flat = F.conv2d(flat, k.view(n * c, 1, 7, 1), groups=n * c)
    return flat.view(n, c, h, w)


def augment(images: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """What a generator's images differ by from renders: softness, noise, a slight drift of colour.

    Each image independently: blur (half of them, sigma 0.3-1.2 px), Gaussian noise (half, sigma up to
    0.06), a gain and offset per channel (half, within 8% and 0.04). Images in [-1, 1].
    """
    n, dev = images.shape[0], images.device

    def draw(*shape):
        return torch.rand(*shape, generator=gen).to(dev)

    blur = draw(n) < 0.5
    sigma = 0.3 + 0.9 * draw(n)
    images = torch.where(blur.view(n, 1, 1, 1), _gaussian_blur(images, sigma), images)
    noise = (draw(n) < 0.5).float() * 0.06 * draw(n)
    images = images + noise.view(n, 1, 1, 1) * torch.randn(images.shape, generator=gen).to(dev)
    jitter = (draw(n) < 0.5).float().view(n, 1, 1, 1)
    gain = 1 + jitter * 0.08 * (2 * draw(n, 3, 1, 1) - 1)
    offset = jitter * 0.04 * (2 * draw(n, 3, 1, 1) - 1)
    return (images * gain + offset).clamp(-1, 1)
