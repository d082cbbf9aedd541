"""StyleGAN2 generator in plain PyTorch, parameter-for-parameter in the rosinality layout.

Module and parameter names follow rosinality/stylegan2-pytorch (`style.1.weight`, `conv1.conv.weight`,
`convs.3.noise.weight`, `to_rgbs.0.upsample.kernel`, `noises.noise_5`, ...), so `G.state_dict()` *is*
the published checkpoint format and loads strictly. The public API uses NVlabs vocabulary:
`z_dim`, `w_dim`, `num_ws`, `img_resolution`, `mapping`, `synthesis`.

Everything is plain PyTorch (no custom CUDA kernels), so it runs on a CPU, a GPU or anything else
PyTorch supports. Equalised learning rate: weights are stored unscaled and multiplied by
`lr_mul / sqrt(fan_in)` at run time, exactly as the checkpoints expect.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

NOISE_MODES = ("const", "random", "none")
BLUR_KERNEL = (1, 3, 3, 1)


def default_channels(img_resolution: int, channel_multiplier: int = 2, channel_max: int = 512) -> dict[int, int]:
    """Channels per resolution of rosinality's config (512 up to 32 px, then halving from 64 px on)."""
    base = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256, 128: 128, 256: 64, 512: 32, 1024: 16}
    out = {}
    for res in resolutions(img_resolution):
        ch = base[res] if res <= 32 else base[res] * channel_multiplier
        out[res] = min(ch, channel_max)
    return out


def resolutions(img_resolution: int) -> list[int]:
    """Block resolutions [4, 8, ..., img_resolution]."""
    log_size = int(math.log2(img_resolution))
    if 2**log_size != img_resolution or not 8 <= img_resolution <= 4096:
        raise ValueError(f"img_resolution must be a power of two between 8 and 4096, got {img_resolution}")
    return [2**i for i in range(2, log_size + 1)]


def make_kernel(k) -> torch.Tensor:
    """Separable FIR kernel [k, k] normalised to sum 1, from its 1-D taps."""
    k = torch.tensor(k, dtype=torch.float32)
    k = k[None, :] * k[:, None]
    return k / k.sum()


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, *, up: int = 1, pad: tuple[int, int] = (0, 0)) -> torch.Tensor:
    """Upsample by zero insertion, pad (negative pads crop), then FIR-filter each channel.

    Same semantics as the reference `upfirdn2d` (true convolution, so the kernel is flipped) for the
    only cases StyleGAN2's generator uses: down = 1, equal padding on both axes.
    """
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = torch.flip(kernel, [0, 1]).to(x.dtype)[None, None].expand(c, 1, *kernel.shape)
    return F.conv2d(x, weight, groups=c)


class PixelNorm(nn.Module):
    """Normalise each z to unit second moment (the first layer of the mapping network)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.square().mean(dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalised learning rate and optional fused leaky ReLU."""

    def __init__(self, in_dim: int, out_dim: int, *, bias_init: float = 0.0, lr_mul: float = 1.0, activation: bool = False):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init)))
        self.scale = lr_mul / math.sqrt(in_dim)
        self.lr_mul = lr_mul
        self.activation = activation

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)
        if self.activation:
            out = F.leaky_relu(out, 0.2) * math.sqrt(2)
        return out


class Blur(nn.Module):
    """Low-pass filter applied after the transposed convolution of an upsampling layer."""

    def __init__(self, pad: tuple[int, int], upsample_factor: int = 1):
        super().__init__()
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * upsample_factor**2)
        self.pad = pad

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, pad=self.pad)


class Upsample(nn.Module):
    """2x FIR upsampling of the RGB skip connection."""

    def __init__(self, factor: int = 2):
        super().__init__()
        self.factor = factor
        self.register_buffer("kernel", make_kernel(BLUR_KERNEL) * factor**2)
        p = len(BLUR_KERNEL) - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return upfirdn2d(x, self.kernel, up=self.factor, pad=self.pad)


class ModulatedConv2d(nn.Module):
    """Convolution whose weights are scaled per sample by a style vector (and optionally demodulated).

    The batch is folded into the channel axis and run as one grouped convolution, so each sample gets
    its own weights in a single kernel launch.
    """

    def __init__(self, in_channel: int, out_channel: int, kernel_size: int, w_dim: int, *, demodulate: bool = True, upsample: bool = False):
        super().__init__()
        self.in_channel, self.out_channel, self.kernel_size = in_channel, out_channel, kernel_size
        self.upsample, self.demodulate = upsample, demodulate
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(w_dim, in_channel, bias_init=1.0)
        self.scale = 1 / math.sqrt(in_channel * kernel_size**2)
        self.padding = kernel_size // 2
        if upsample:
            factor = 2
            p = (len(BLUR_KERNEL) - factor) - (kernel_size - 1)
            self.blur = Blur(pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        n, c, h, wd = x.shape
        style = self.modulation(w).view(n, 1, c, 1, 1)
        weight = self.scale * self.weight * style  # [N, out, in, k, k]
        if self.demodulate:
            demod = torch.rsqrt(weight.square().sum(dim=(2, 3, 4)) + 1e-8)
            weight = weight * demod.view(n, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        x = x.reshape(1, n * c, h, wd)
        if self.upsample:
            # conv_transpose2d wants [in, out, k, k] per group.
            weight = weight.transpose(1, 2).reshape(n * c, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=n)
            out = out.view(n, self.out_channel, *out.shape[2:])
            return self.blur(out)
        weight = weight.reshape(n * self.out_channel, c, k, k)
        out = F.conv2d(x, weight, padding=self.padding, groups=n)
        return out.view(n, self.out_channel, h, wd)


class NoiseInjection(nn.Module):
    """Adds per-pixel noise scaled by a learned strength."""

    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return x if noise is None else x + self.weight * noise


class FusedLeakyReLU(nn.Module):
    """Bias add, leaky ReLU (slope 0.2) and a sqrt(2) gain, as StyleGAN2's fused op."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.leaky_relu(x + self.bias.view(1, -1, 1, 1), 0.2) * math.sqrt(2)


class StyledConv(nn.Module):
    """Modulated 3x3 convolution, then noise, then bias + activation."""

    def __init__(self, in_channel: int, out_channel: int, w_dim: int, *, upsample: bool = False):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, 3, w_dim, upsample=upsample)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise: torch.Tensor | None) -> torch.Tensor:
        return self.activate(self.noise(self.conv(x, w), noise))


class ToRGB(nn.Module):
    """1x1 modulated convolution to RGB, added to the upsampled RGB of the previous block."""

    def __init__(self, in_channel: int, w_dim: int, *, upsample: bool = True):
        super().__init__()
        if upsample:
            self.upsample = Upsample()
        self.conv = ModulatedConv2d(in_channel, 3, 1, w_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward(self, x: torch.Tensor, w: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv(x, w) + self.bias
        if skip is not None:
            out = out + self.upsample(skip)
        return out


class ConstantInput(nn.Module):
    """The learned 4x4 constant the synthesis network starts from."""

    def __init__(self, channels: int, size: int = 4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channels, size, size))

    def forward(self, n: int) -> torch.Tensor:
        return self.input.expand(n, -1, -1, -1)


def style_mix(ws: torch.Tensor, ws_other: torch.Tensor, cutoff: int) -> torch.Tensor:
    """Style mixing: W+ indices `>= cutoff` come from `ws_other` (rosinality's `inject_index`).

    Args: ws, ws_other `[N, num_ws, w_dim]`; cutoff in [0, num_ws]. Returns a new tensor.
    """
    if ws.shape != ws_other.shape:
        raise ValueError(f"style_mix needs two ws of the same shape, got {tuple(ws.shape)} and {tuple(ws_other.shape)}")
    if not 0 <= cutoff <= ws.shape[1]:
        raise ValueError(f"style_mix cutoff must be in [0, {ws.shape[1]}], got {cutoff}")
    return torch.cat([ws[:, :cutoff], ws_other[:, cutoff:]], dim=1)


class MappedGenerator:
    """What StyleGAN2's and StyleGAN3's generators share on top of their `mapping` and `synthesis`:
    z to images with truncation and style mixing, and the mean w of random z. Both classes use it."""

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        *,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        mix_z: torch.Tensor | None = None,
        mix_cutoff: int | None = None,
    ) -> torch.Tensor:
        """z `[N, z_dim]` -> images `[N, 3, H, W]` in about [-1, 1]; `mix_z` styles indices >= `mix_cutoff`."""
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
        if mix_z is not None:
            if mix_cutoff is None:
                raise ValueError("mix_z needs mix_cutoff, the first W+ index taken from mix_z")
            ws = style_mix(ws, self.mapping(mix_z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff), mix_cutoff)
        return self.synthesis(ws, noise_mode=noise_mode)

    @torch.no_grad()
    def estimate_w_avg(self, n: int = 4096, *, seed: int = 0) -> torch.Tensor:
        """Mean w over `n` random z, for files that carry none (as rosinality's `mean_latent`; NVlabs
        pickles carry their own `w_avg`)."""
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n, self.z_dim, generator=gen).to(self.w_avg.device)
        c = None
        if self.c_dim:
            labels = torch.randint(self.c_dim, (n,), generator=gen).to(z.device)
            c = F.one_hot(labels, self.c_dim).to(z.dtype)
        return self.mapping(z, c)[:, 0].mean(dim=0)


class Generator(MappedGenerator, nn.Module):
    """StyleGAN2 generator (mapping + synthesis) in the rosinality parameter layout.

    Args:
        img_resolution: output size, a power of two (32 for CIFAR-10 ... 1024 for FFHQ).
        w_dim: size of w (rosinality's `style_dim`), 512 for every published model.
        z_dim: size of z; defaults to w_dim as in every published model.
        n_mlp: number of mapping layers (8; NVlabs' CIFAR-10 model uses 2).
        channel_multiplier: rosinality's config knob (2 = config-f); ignored when `channels` is given.
        channels: channels per block resolution, e.g. {4: 512, 8: 512, ...}; read off a checkpoint's
            shapes when loading, small for tests.
        c_dim: number of classes for class-conditional models (NVlabs CIFAR-10), 0 otherwise.
        lr_mlp: learning-rate multiplier of the mapping network (0.01 in every published model).
    """

    def __init__(
        self,
        img_resolution: int,
        *,
        w_dim: int = 512,
        z_dim: int | None = None,
        n_mlp: int = 8,
        channel_multiplier: int = 2,
        channels: dict[int, int] | None = None,
        c_dim: int = 0,
        lr_mlp: float = 0.01,
    ):
        super().__init__()
        res_list = resolutions(img_resolution)
        channels = {int(k): int(v) for k, v in (channels or default_channels(img_resolution, channel_multiplier)).items()}
        missing = [r for r in res_list if r not in channels]
        if missing:
            raise ValueError(f"channels is missing resolutions {missing}")
        self.img_resolution = img_resolution
        self.w_dim = w_dim
        self.z_dim = w_dim if z_dim is None else z_dim
        self.c_dim = c_dim
        self.n_mlp = n_mlp
        self.channels = {r: channels[r] for r in res_list}
        self.lr_mlp = lr_mlp
        self.num_ws = 2 * len(res_list)  # = 2 * log2(img_resolution) - 2
        self.num_noises = 2 * len(res_list) - 1

        in_features = self.z_dim + (w_dim if c_dim else 0)
        layers: list[nn.Module] = [PixelNorm()]
        for i in range(n_mlp):
            layers.append(EqualLinear(in_features if i == 0 else w_dim, w_dim, lr_mul=lr_mlp, activation=True))
        self.style = nn.Sequential(*layers)
        if c_dim:
            # NVlabs' class embedding: a plain equalised linear layer, normalised like z.
            self.embed = EqualLinear(c_dim, w_dim)

        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], w_dim)
        self.to_rgb1 = ToRGB(self.channels[4], w_dim, upsample=False)
        self.convs = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        in_ch = self.channels[4]
        for res in res_list[1:]:
            out_ch = self.channels[res]
            self.convs.append(StyledConv(in_ch, out_ch, w_dim, upsample=True))
            self.convs.append(StyledConv(out_ch, out_ch, w_dim))
            self.to_rgbs.append(ToRGB(out_ch, w_dim))
            in_ch = out_ch
        self.noises = nn.Module()
        for i in range(self.num_noises):
            res = 2 ** ((i + 5) // 2)
            self.noises.register_buffer(f"noise_{i}", torch.randn(1, 1, res, res))
        # Mean w for truncation. Not in the rosinality g_ema dict (it sits beside it as `latent_avg`),
        # so it is kept out of state_dict() to keep the published key set exact.
        self.register_buffer("w_avg", torch.zeros(w_dim), persistent=False)
        self.w_avg_source = "unset (zeros)"  # loaders set "checkpoint" or "estimated ..."
        # Speed options (training_step.prepare_fast sets them); neither changes what is computed.
        self.memory_format = torch.contiguous_format  # torch.channels_last is faster on recent GPUs
        self.checkpointing = False  # gradient checkpointing of each synthesis block

        # ONE table of which W+ index each modulated layer reads, in forward order. The forward pass
        # below is driven by it, and layer selection derives its mapping from the same table.
        self.ws_layout: list[tuple[str, int]] = [("conv1", 0), ("to_rgb1", 1)]
        for b in range(len(self.to_rgbs)):
            self.ws_layout += [(f"convs.{2 * b}", 2 * b + 1), (f"convs.{2 * b + 1}", 2 * b + 2), (f"to_rgbs.{b}", 2 * b + 3)]

    # The layer facts that adapt/freezing.py reads; StyleGAN3Generator states its own.
    mapping_prefix = "style."  # rosinality's name for the mapping network's parameters
    constant_layers = ("input",)  # the learned 4x4 constant: trainable, but it reads no W+ index
    has_official_layer_sets = True  # the official code's sets (official, phase:, auto-official:) are defined on these layers

    def is_torgb(self, name: str) -> bool:
        """Whether a layer prefix names a toRGB layer."""
        return name == "to_rgb1" or name.startswith("to_rgbs.")

    def synthesis_blocks(self) -> list[list[str]]:
        """Module prefixes per resolution block, first to last: 4x4 (input, conv1, to_rgb1), then two
        convolutions and a toRGB each."""
        blocks = [["input", "conv1", "to_rgb1"]]
        for b in range(len(self.to_rgbs)):
            blocks.append([f"convs.{2 * b}", f"convs.{2 * b + 1}", f"to_rgbs.{b}"])
        return blocks

    @property
    def arch(self) -> dict:
        """Constructor arguments that rebuild this architecture (plain types, JSON-safe)."""
        return {
            "img_resolution": self.img_resolution,
            "w_dim": self.w_dim,
            "z_dim": self.z_dim,
            "n_mlp": self.n_mlp,
            "channels": {str(k): v for k, v in self.channels.items()},
            "c_dim": self.c_dim,
            "lr_mlp": self.lr_mlp,
        }

    def mapping(
        self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0, truncation_cutoff: int | None = None
    ) -> torch.Tensor:
        """Map z `[N, z_dim]` (and one-hot labels c `[N, c_dim]` when conditional) to ws `[N, num_ws, w_dim]`.

        Truncation pulls w towards `w_avg` (the checkpoint's `latent_avg`): psi = 1 keeps w, psi = 0 gives
        the mean; with `truncation_cutoff` only W+ indices below it are truncated.
        """
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
        if self.c_dim:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this generator is class-conditional: pass c of shape [{z.shape[0]}, {self.c_dim}] (one-hot labels)")
            x = torch.cat([self.style[0](z), self.style[0](self.embed(c.to(z.dtype)))], dim=1)
            w = self.style[1:](x)
        else:
            w = self.style(z)
        ws = w.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.to(ws.dtype).lerp(ws[:, :cutoff], truncation_psi)
        return ws

    def make_noise(self, n: int, noise_mode: str, *, device=None, dtype=None) -> list[torch.Tensor | None]:
        """Per-layer noise inputs for `noise_mode` "const" (stored buffers), "random" or "none"."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        buffers = [getattr(self.noises, f"noise_{i}") for i in range(self.num_noises)]
        if noise_mode == "const":
            return buffers
        if noise_mode == "none":
            return [None] * self.num_noises
        return [torch.randn(n, 1, b.shape[2], b.shape[3], device=device or b.device, dtype=dtype or b.dtype) for b in buffers]

    def synthesis(self, ws: torch.Tensor, *, noise_mode: str = "const", noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Render ws `[N, num_ws, w_dim]` to images `[N, 3, H, W]`, values about [-1, 1].

        `noise_mode="const"` uses the checkpoint's stored noise (rosinality's `randomize_noise=False`);
        an explicit `noise` list overrides it.
        """
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        n = ws.shape[0]
        if noise is None:
            noise = self.make_noise(n, noise_mode, device=ws.device, dtype=ws.dtype)
        x = self.input(n)
        if self.memory_format != torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)  # convolutions keep the input's layout
        index = dict(self.ws_layout)  # each layer's W+ index: the one table layer selection reads too
        x = self.conv1(x, ws[:, index["conv1"]], noise[0])
        skip = self.to_rgb1(x, ws[:, index["to_rgb1"]])
        recompute = self.checkpointing and torch.is_grad_enabled()
        for b in range(len(self.to_rgbs)):
            styles = [ws[:, index[name]] for name in (f"convs.{2 * b}", f"convs.{2 * b + 1}", f"to_rgbs.{b}")]
            args = (b, x, skip, *styles, noise[2 * b + 1], noise[2 * b + 2])
            # Checkpointing keeps only each block's inputs for backward and recomputes the rest there:
            # a fifth more FLOPs per training step for about a quarter less peak memory (docs/BENCHMARKS.md).
            x, skip = checkpoint(self._block, *args, use_reentrant=False) if recompute else self._block(*args)
        return skip

    def _block(self, b: int, x, skip, w_a, w_b, w_rgb, noise_a, noise_b):
        """Synthesis block b: upsampling conv, conv, toRGB added to the upsampled skip; one w `[N, w_dim]` each."""
        x = self.convs[2 * b](x, w_a, noise_a)
        x = self.convs[2 * b + 1](x, w_b, noise_b)
        return x, self.to_rgbs[b](x, w_rgb, skip)


def z_from_seeds(seeds, z_dim: int) -> torch.Tensor:
    """z `[len(seeds), z_dim]`, one row per seed, drawn as NVlabs' `gen_images.py` does.

    Using numpy's RandomState(seed) keeps seed -> image identical to the NVlabs tools, which users
    compare against.
    """
    import numpy as np

    return torch.from_numpy(np.stack([np.random.RandomState(int(s)).randn(z_dim) for s in seeds])).float()
