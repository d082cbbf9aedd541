"""One NADA training step, shared by the trainer and the benchmark, and the speed options it can use.

The trainer and `bench` call the same `forward_losses` / `select_layers`, so the benchmark times the
code users run. A step never reads a value back from the GPU before its backward: loss terms stay
tensors until the trainer logs them, after the backward has been queued.

Fast paths (`--fast`, comma-separated; "auto" is tf32,channels_last on CUDA and none on a CPU):
- `tf32`: TensorFloat-32 matmuls and convolutions on NVIDIA GPUs (Ampere and later);
- `bf16`: bfloat16 autocast of the generators' forward passes (the backward follows autocast's casts);
- `channels_last`: NHWC activations in the generators, which tensor cores prefer;
- `checkpoint`: gradient checkpointing of G_train's synthesis blocks, for large models on small GPUs;
- `compile`: `torch.compile` of the generators' synthesis and CLIP's image encoders.
Each one gives the plain path's results within a tolerance, tested on the CPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch

from nada_utils.adapt.losses import l2_regulariser
from nada_utils.errors import NadaError

FAST_PATHS = ("tf32", "bf16", "channels_last", "checkpoint", "compile")
# bf16 is left out of "auto": it was never checked on a GPU that adaptation is as good with it.
GPU_DEFAULT = ("tf32", "channels_last")


def parse_fast(text: str | None, device: torch.device) -> tuple[str, ...]:
    """`--fast` -> the fast paths to use: "auto" (GPU_DEFAULT on CUDA, none elsewhere), "none", or a list."""
    text = (text or "auto").strip()
    if text == "auto":
        return GPU_DEFAULT if device.type == "cuda" else ()
    if text == "none":
        return ()
    names = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [n for n in names if n not in FAST_PATHS]
    if unknown:
        raise NadaError(f"unknown fast path {unknown[0]!r}; use auto, none, or a comma list of {', '.join(FAST_PATHS)}")
    return tuple(n for n in FAST_PATHS if n in names)


def prepare_fast(setup, fast: tuple[str, ...]) -> None:
    """Switch the models of `setup` to the fast paths that live on the models (layout, checkpointing, compile)."""
    for G in (setup.G_frozen, setup.G_train):
        G.memory_format = torch.channels_last if "channels_last" in fast else torch.contiguous_format
    setup.G_train.checkpointing = "checkpoint" in fast
    if "compile" in fast:
        for G in (setup.G_frozen, setup.G_train):
            G.synthesis = torch.compile(G.synthesis)
        for gm in setup.guide.models:
            gm.model.encode_image = torch.compile(gm.model.encode_image)


@contextlib.contextmanager
def precision(fast: tuple[str, ...]):
    """float32 matmul/convolution precision for a whole step (forward and backward), restored on exit.

    Without `tf32`, float32 is exact IEEE everywhere: PyTorch's default lets cuDNN convolutions use
    TF32, which would blur the comparison of the fast and the plain path.
    """
    matmul, conv = torch.backends.cuda.matmul, torch.backends.cudnn.conv
    saved = matmul.fp32_precision, conv.fp32_precision
    matmul.fp32_precision = conv.fp32_precision = "tf32" if "tf32" in fast else "ieee"
    try:
        yield
    finally:
        matmul.fp32_precision, conv.fp32_precision = saved


def autocast(fast: tuple[str, ...], device: torch.device):
    """bf16 autocast for forward passes (backward passes follow the casts autocast recorded)."""
    if "bf16" not in fast:
        return contextlib.nullcontext()  # also where autocast does not exist (the meta device of estimates)
    return torch.autocast(device.type, dtype=torch.bfloat16)


@dataclass
class StepSettings:
    """What one step needs from the run's config."""

    truncation: float = 1.0
    train_mapping: bool = False  # phase:all trains the mapping network too
    l2_weight: float = 0.0
    id_weight: float = 0.0
    fast: tuple[str, ...] = ()


def forward_losses(setup, latents, directions, settings: StepSettings, device) -> tuple[torch.Tensor, dict]:
    """Render one batch with both generators and return (loss, {term: detached tensor}).

    G_frozen runs without autograd; both generators see the same w (unless the mapping network itself
    is trained, phase:all, or G_train mixes styles at its own cutoff) and the same stored noise, unless
    `latents.noise` gives each its own. With `bf16`, only the generators (most of the
    FLOPs at 1024 px) run under autocast: the losses compare CLIP embeddings of two nearly equal
    images, and that small difference must not drown in bfloat16's rounding (8 bits of mantissa).
    """
    G_frozen, G_train = setup.G_frozen, setup.G_train
    with autocast(settings.fast, device):
        with torch.no_grad():
            ws = latents.ws(G_frozen, settings.truncation)
            noise_frozen, noise_train = latents.noise or (None, None)
            img_frozen = G_frozen.synthesis(ws, noise_mode="const", noise=noise_frozen)
        own = settings.train_mapping or latents.cutoff_train is not None  # G_train's own mapping or cutoff
        ws_train = latents.ws(G_train, settings.truncation, train=True) if own else ws
        img_train = G_train.synthesis(ws_train, noise_mode="const", noise=noise_train)
    img_frozen, img_train = img_frozen.float(), img_train.float()
    loss, directional = setup.guide.directional(img_frozen, img_train, directions, latents.labels)
    terms = {"directional": directional}
    if settings.l2_weight > 0:
        l2 = l2_regulariser(img_frozen, img_train)
        loss = loss + settings.l2_weight * l2
        terms["l2"] = l2.detach()
    if setup.identity is not None and settings.id_weight > 0:
        idl = setup.identity(img_frozen, img_train)
        loss = loss + settings.id_weight * idl
        terms["id"] = idl.detach()
    return loss, terms


def backward_step(setup, optimizer, latents, directions, settings: StepSettings, device) -> tuple[torch.Tensor, dict]:
    """Forward, loss and backward of one step; the caller checks the loss and steps the optimiser."""
    with precision(settings.fast):
        loss, terms = forward_losses(setup, latents, directions, settings, device)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
    return loss, terms


@torch.no_grad()
def as_floats(terms: dict) -> dict:
    """The step's terms as plain floats for the log (one read-back from the device)."""
    return {k: as_floats(v) if isinstance(v, dict) else float(v) for k, v in terms.items()}
