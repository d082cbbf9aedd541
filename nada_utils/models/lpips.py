"""LPIPS-VGG (Zhang et al. 2018, v0.1): a perceptual distance between images, for inversion.

Built here in plain PyTorch so that two plain state dicts load with `weights_only=True`: torchvision's
ImageNet VGG16 (registry `vgg16`, only its `features.*` convolutions are used) and the five LPIPS
linear heads (registry `lpips-vgg`, the `vgg.pth` of LPIPS v0.1). The distance: scale the input as
LPIPS does, take VGG16's relu1_2, relu2_2, relu3_3, relu4_3 and relu5_3 activations, unit-normalise
each over channels, square the differences, weight channels with the linear head, average over space,
and sum over the five layers. Without the weights, callers fall back to a CLIP-feature + pixel loss.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from nada_utils.errors import NadaError

# VGG16's feature stack (torchvision's layout and indices); "M" is a 2x2 max-pool. Only up to relu5_3 is used.
_VGG16 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
_TAPS = (3, 8, 15, 22, 29)  # indices of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 in that stack
_CHANNELS = (64, 128, 256, 512, 512)


def _vgg16_features() -> nn.Sequential:
    layers, c_in = [], 3
    for v in _VGG16:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
            c_in = v
    return nn.Sequential(*layers)


class LPIPS(nn.Module):
    """`forward(a, b)` -> `[N]` LPIPS-VGG distances of `[N, 3, H, W]` images in [-1, 1] (gradients flow)."""

    def __init__(self):
        super().__init__()
        self.features = _vgg16_features()
        self.lins = nn.ModuleList(nn.Conv2d(c, 1, 1, bias=False) for c in _CHANNELS)
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])
        self.eval().requires_grad_(False)

    def _taps(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        x = (x - self.shift) / self.scale
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in _TAPS:
                out.append(x / (x.square().sum(1, keepdim=True).sqrt() + 1e-10))
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return sum(lin((fa - fb).square()).mean((2, 3)) for lin, fa, fb in zip(self.lins, self._taps(a), self._taps(b)))[:, 0]

    def load_weights(self, vgg16: dict, heads: dict) -> "LPIPS":
        """Load torchvision's VGG16 state dict (classifier keys ignored) and LPIPS's `lin{i}.model.1.weight` heads."""
        if not (isinstance(vgg16, dict) and isinstance(heads, dict)):
            raise NadaError(f"these are not VGG16 + LPIPS v0.1 weights (a {type(vgg16).__name__} and a "
                            f"{type(heads).__name__}, not two state dicts)")
        features = {k[len("features."):]: v for k, v in vgg16.items() if isinstance(k, str) and k.startswith("features.")}
        layer = {k: k.split(".")[0] for k in features}
        if not all(i.isdigit() for i in layer.values()):
            raise NadaError("these are not VGG16 weights (features.* keys without a layer number)")
        features = {k: v for k, v in features.items() if int(layer[k]) < len(self.features)}
        lins = {f"{i}.weight": heads.get(f"lin{i}.model.1.weight") for i in range(len(_CHANNELS))}
        try:
            self.features.load_state_dict(features, strict=True)
            self.lins.load_state_dict(lins, strict=True)
        except (RuntimeError, TypeError, AttributeError) as e:
            raise NadaError(f"these are not VGG16 + LPIPS v0.1 weights ({str(e).splitlines()[0][:120]})") from None
        return self


def load_lpips(*, device="cpu", vgg16_path=None, heads_path=None) -> tuple[LPIPS | None, str]:
    """LPIPS-VGG from the registry's `vgg16` and `lpips-vgg` in the cache (or the given paths), or (None, why not).

    It never downloads: a missing file gives the message with the command that fetches it.
    """
    from nada_utils.weights import registry
    from nada_utils.weights.safe_pickle import load_pt

    paths = [Path(vgg16_path) if vgg16_path else registry.local_path("vgg16"),
             Path(heads_path) if heads_path else registry.local_path("lpips-vgg")]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        return None, (f"LPIPS weights not found ({', '.join(map(str, missing))}); "
                      f"run `python -m nada_utils fetch vgg16 lpips-vgg` to use LPIPS-VGG")
    try:
        net = LPIPS().load_weights(load_pt(paths[0]), load_pt(paths[1]))
    except NadaError as e:
        raise NadaError(f"{paths[0]} / {paths[1]}: {e}") from None
    return net.to(device), f"LPIPS-VGG from {paths[0].parent}"
