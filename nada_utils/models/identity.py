"""Identity loss: an IR-SE50 ArcFace network (pSp's `model_ir_se50.pth` layout) comparing faces.

`1 - cos(f(G_train(w)), f(G_frozen(w)))` keeps a face's identity while its style changes. The
network is built with pSp's module names so its published state dict loads strictly. Without the
weights the loss is skipped with one clear message; it never blocks training.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nada_utils.errors import NadaError


class SEModule(nn.Module):
    """Squeeze-and-excitation: channel weights from a pooled 2-layer bottleneck."""

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def forward(self, x):
        s = torch.sigmoid(self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1)))))
        return x * s


class BottleneckIRSE(nn.Module):
    """Pre-activation residual unit with SE (ArcFace's "IR-SE")."""

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth))
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel), nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False), nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False), nn.BatchNorm2d(depth), SEModule(depth))

    def forward(self, x):
        return self.res_layer(x) + self.shortcut_layer(x)


class IRSE50(nn.Module):
    """IR-SE50 backbone for 112x112 faces in [-1, 1] -> unit 512-d identity embeddings."""

    STAGES = ((64, 64, 3), (64, 128, 4), (128, 256, 14), (256, 512, 3))  # (in, depth, units)

    def __init__(self, widths: tuple[int, int, int, int] | None = None, drop_ratio: float = 0.6):
        super().__init__()
        stages = self.STAGES if widths is None else tuple(
            (w_in, w, n) for (w_in, w), (_, _, n) in zip(zip((widths[0],) + widths[:-1], widths), self.STAGES))
        first = stages[0][0]
        self.input_layer = nn.Sequential(nn.Conv2d(3, first, 3, 1, 1, bias=False), nn.BatchNorm2d(first), nn.PReLU(first))
        units = []
        for in_ch, depth, n in stages:
            units.append(BottleneckIRSE(in_ch, depth, 2))
            units += [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        last = stages[-1][1]
        self.output_layer = nn.Sequential(nn.BatchNorm2d(last), nn.Dropout(drop_ratio), nn.Flatten(),
                                          nn.Linear(last * 7 * 7, 512), nn.BatchNorm1d(512))

    def forward(self, x):
        return F.normalize(self.output_layer(self.body(self.input_layer(x))), dim=-1)


def face_crop(images: torch.Tensor) -> torch.Tensor:
    """FFHQ-aligned `[N, 3, H, W]` in [-1, 1] -> the inner face at 112x112, exactly as pSp's identity loss
    (also e4e's and StyleCLIP's) crops it: average-pool to 256x256 unless already that size, take rows
    35:223 and columns 32:220, average-pool to 112x112. Cropping at full size and pooling once instead
    changes the loss by about 3e-3 relative at 1024 px."""
    if images.shape[-2:] != (256, 256):
        images = F.adaptive_avg_pool2d(images, (256, 256))
    return F.adaptive_avg_pool2d(images[..., 35:223, 32:220], (112, 112))


def widths_from_state_dict(sd: dict) -> tuple[int, int, int, int]:
    """The four stage widths of an IR-SE50 state dict, read off its shapes (64, 128, 256, 512 in pSp's file)."""
    first_units, start = [], 0
    for _, _, n in IRSE50.STAGES:
        first_units.append(start)
        start += n
    return tuple(int(sd[f"body.{i}.res_layer.1.weight"].shape[0]) for i in first_units)


class IdentityLoss(nn.Module):
    """Batch mean of `1 - cos(f(x_train), f(x_frozen))` with a frozen IR-SE50 `f`."""

    def __init__(self, net: IRSE50):
        super().__init__()
        self.net = net.eval().requires_grad_(False)

    def forward(self, img_frozen: torch.Tensor, img_train: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            ref = self.net(face_crop(img_frozen))
        return (1 - (self.net(face_crop(img_train)) * ref).sum(-1)).mean()


def load_identity_loss(path=None, *, device="cpu") -> tuple[IdentityLoss | None, str]:
    """The identity loss from `path` or the registry's `ir-se50` in the cache, or (None, why it is skipped).

    It never downloads: a missing file gives the message with the command that fetches it.
    """
    from nada_utils.weights import registry
    from nada_utils.weights.safe_pickle import load_pt

    path = Path(path) if path else registry.local_path("ir-se50")
    if not path.is_file():
        return None, (f"identity loss skipped: IR-SE50 weights not found at {path}; "
                      f"run `python -m nada_utils fetch ir-se50` or put model_ir_se50.pth there")
    sd = load_pt(path)
    try:
        net = IRSE50(widths_from_state_dict(sd))
        net.load_state_dict(sd, strict=True)
    except (RuntimeError, KeyError, TypeError, AttributeError, IndexError, ValueError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:120]
        raise NadaError(f"{path} is not an IR-SE50 state dict ({first}); use pSp's model_ir_se50.pth") from None
    return IdentityLoss(net).to(device), f"identity loss: IR-SE50 from {path}"
