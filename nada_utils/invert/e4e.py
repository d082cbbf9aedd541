"""e4e ("encoder4editing", Tov et al. 2021): a feed-forward encoder from an FFHQ image to W+ codes.

Optimisation-based projection (`nada_utils.invert.projection`) takes minutes per image; e4e takes one forward
pass and lands in a well-behaved region of W+, which is what editing a real face needs. The modules
carry e4e's own names (`input_layer`, `body`, `styles`, `latlayer1/2`) so the `encoder.*` weights of
the published `e4e_ffhq_encode.pt` load strictly. Its decoder is ignored: we render with our own G.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from nada_utils.errors import NadaError
from nada_utils.invert.projection import Projection
from nada_utils.models.identity import IRSE50, BottleneckIRSE
from nada_utils.models.stylegan2 import EqualLinear

COARSE, MIDDLE = 3, 7  # style indices from which e4e reads the 32 px and the 64 px feature maps
C1, C2, C3 = 6, 20, 23  # last units of stages 2-4 (unit 2 ends stage 1): the 64, 32, 16 px maps at 256 px input


class GradualStyleBlock(nn.Module):
    """Stride-2 3x3 convs with LeakyReLU from `spatial` px down to 1 px, then an equalised linear layer."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        layers = []
        for i in range(spatial.bit_length() - 1):  # log2(spatial) halvings
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c)  # same names and 1/sqrt(in) scaling as rosinality's
        self.out_c = out_c

    def forward(self, x):
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def _upsample_add(top: torch.Tensor, lateral: torch.Tensor) -> torch.Tensor:
    """FPN merge as pSp/e4e do it: bilinear upsampling with align_corners=True, then add."""
    return F.interpolate(top, size=lateral.shape[-2:], mode="bilinear", align_corners=True) + lateral


class E4EEncoder(nn.Module):
    """Encoder4Editing with the IR-SE50 body: 256 px images in [-1, 1] -> ws `[N, n_styles, w_dim]`.

    One w comes from the coarsest features and is repeated; every other style index adds its own delta,
    read from an FPN-style pyramid (16, 32, 64 px). `latent_avg` is added at the end, as pSp does with
    `start_from_latent_avg`. `widths` (the four IR-SE50 stage widths) and `w_dim` only exist so tests
    can build a tiny model; the defaults are the published architecture.
    """

    def __init__(self, n_styles: int = 18, *, w_dim: int = 512, widths: tuple[int, int, int, int] | None = None):
        super().__init__()
        stages = IRSE50.STAGES if widths is None else tuple(
            (w_in, w, n) for w_in, w, (_, _, n) in zip((widths[0],) + tuple(widths[:-1]), widths, IRSE50.STAGES))
        first, w1, w2, w3 = stages[0][0], stages[1][1], stages[2][1], stages[3][1]
        self.input_layer = nn.Sequential(nn.Conv2d(3, first, 3, 1, 1, bias=False), nn.BatchNorm2d(first), nn.PReLU(first))
        units = []
        for in_ch, depth, n in stages:
            units += [BottleneckIRSE(in_ch, depth, 2)] + [BottleneckIRSE(depth, depth, 1) for _ in range(n - 1)]
        self.body = nn.Sequential(*units)
        self.styles = nn.ModuleList(
            GradualStyleBlock(w3, w_dim, 16 if i < COARSE else 32 if i < MIDDLE else 64) for i in range(n_styles))
        self.latlayer1 = nn.Conv2d(w2, w3, 1)
        self.latlayer2 = nn.Conv2d(w1, w3, 1)
        self.register_buffer("latent_avg", torch.zeros(n_styles, w_dim))
        self.n_styles, self.w_dim = n_styles, w_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_layer(x)
        feats = {}
        for i, unit in enumerate(self.body):
            x = unit(x)
            feats[i] = x
        c1, c2, c3 = feats[C1], feats[C2], feats[C3]
        # The published model runs at ProgressiveStage.Inference: every index gets its delta.
        deltas, features = [], c3
        for i in range(1, self.n_styles):
            if i == COARSE:
                p2 = features = _upsample_add(c3, self.latlayer1(c2))
            elif i == MIDDLE:
                features = _upsample_add(p2, self.latlayer2(c1))
            deltas.append(self.styles[i](features))
        w0 = self.styles[0](c3)
        ws = torch.stack([w0] + [w0 + d for d in deltas], dim=1)
        return ws + self.latent_avg


def encoder_from_checkpoint(obj, *, name: str = "the checkpoint") -> E4EEncoder:
    """Build an E4EEncoder from an e4e/pSp checkpoint dict; `encoder.*` keys must match exactly."""
    sd = obj.get("state_dict") if isinstance(obj, dict) else None
    if not isinstance(sd, dict) or "encoder.styles.0.linear.weight" not in sd:
        raise NadaError(f"{name} is not an e4e checkpoint: no 'state_dict' with 'encoder.styles.*' weights")
    enc = {k[len("encoder."):]: v for k, v in sd.items() if k.startswith("encoder.")}
    n_styles = len({k.split(".")[1] for k in enc if k.startswith("styles.")})
    w_dim = enc["styles.0.linear.weight"].shape[0]
    # Stage widths from the last unit of each stage (its BatchNorm); a wrong layout fails the strict load below.
    widths = tuple(getattr(enc.get(f"body.{i}.res_layer.4.weight"), "shape", (0,))[0] for i in (2, C1, C2, C3))
    model = E4EEncoder(n_styles, w_dim=w_dim, widths=None if widths == (64, 128, 256, 512) or 0 in widths else widths)
    avg = obj.get("latent_avg")
    opts = obj.get("opts") if isinstance(obj.get("opts"), dict) else {}
    if avg is None and opts.get("start_from_latent_avg"):
        raise NadaError(f"{name} is not a usable e4e checkpoint: it starts from latent_avg but does not store it")
    # Trained from scratch it holds [n_styles, w_dim]; older pSp files hold one [w_dim] row, used at every index.
    if avg is not None and tuple(avg.shape) not in ((w_dim,), (n_styles, w_dim)):
        raise NadaError(f"{name} is not an e4e checkpoint: latent_avg is {tuple(avg.shape)}, not [{n_styles}, {w_dim}]")
    enc["latent_avg"] = torch.zeros(n_styles, w_dim) if avg is None else avg.float().expand(n_styles, w_dim)
    try:
        model.load_state_dict(enc, strict=True)
    except RuntimeError as e:
        raise NadaError(f"{name} is not an e4e checkpoint: {str(e).splitlines()[0][:160]}") from None
    return model.eval().requires_grad_(False)


def load_e4e(source="e4e-ffhq", *, device="cpu") -> E4EEncoder:
    """The e4e encoder from a registry name or a file path. It never downloads; a missing file says how."""
    from nada_utils.weights import registry
    from nada_utils.weights.safe_pickle import load_pt

    path = Path(source)
    if not path.is_file():
        if str(source) not in registry.REGISTRY:
            raise NadaError(f"e4e weights not found: {source} is neither a file nor a registry name like e4e-ffhq")
        path = registry.local_path(str(source))
        if not path.is_file():
            raise NadaError(f"e4e weights not found at {path}; run `python -m nada_utils fetch {source}` first")
    return encoder_from_checkpoint(load_pt(path), name=str(path)).to(device)


@torch.no_grad()
def encode(encoder: E4EEncoder, G, image: torch.Tensor) -> Projection:
    """Invert `image` (`[3, H, W]` or `[1, 3, H, W]` in [-1, 1], at G's resolution) with one encoder pass.

    The result has the same type as `project`, with G's stored noise maps: e4e's inference script renders
    its codes with `randomize_noise=False`, i.e. the constant noise. Other sizes are resized to 256 px.
    """
    if encoder.n_styles != G.num_ws or encoder.w_dim != G.w_dim:
        raise NadaError(f"this e4e encoder makes {encoder.n_styles} ws of {encoder.w_dim} dims; the generator "
                        f"({G.img_resolution} px) needs {G.num_ws} of {G.w_dim}: e4e-ffhq is for ffhq-1024")
    x = image[None] if image.dim() == 3 else image
    if x.dim() != 4 or x.shape[:2] != (1, 3):
        raise NadaError(f"encode needs one RGB image [3, H, W] or [1, 3, H, W], got {tuple(image.shape)}")
    device = next(encoder.parameters()).device
    x = x.to(device).float()
    if x.shape[-2:] != (256, 256):  # e4e's test transform: PIL Resize((256, 256)), i.e. antialiased bilinear
        x = F.interpolate(x, size=(256, 256), mode="bilinear", align_corners=False, antialias=True)
    was_training = encoder.training
    ws = encoder.eval()(x)
    encoder.train(was_training)
    g_dev = next(G.parameters()).device
    noise = [n.detach().clone() for n in G.make_noise(1, "const", device=g_dev)]
    return Projection(ws.to(g_dev), noise, "w+", "e4e encoder", [])
