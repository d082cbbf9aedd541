"""StyleGAN3 generator (configs T and R) in plain PyTorch, with NVlabs' module, parameter and buffer names.

Module names follow NVlabs' `training/networks_stylegan3.py` (`mapping.fc0`, `synthesis.input.freqs`,
`synthesis.L3_52_512.up_filter`, ...), so the `G_ema` state dict of a `stylegan3-*.pkl` loads strictly,
and the layer count, channels, cutoffs, sampling rates and paddings are derived from the same
constructor arguments by the same formulas. The API is NVlabs': `G.mapping(z, c)`, `G.synthesis(ws)`,
`G.synthesis.input.transform`, plus what nada's StyleGAN2 `Generator` offers (`w_avg`, `arch`,
`ws_layout`, `estimate_w_avg`, ...), so the rest of nada can treat both alike.

Everything is plain PyTorch (`stylegan3_ops`: NVlabs' CUDA `filtered_lrelu` replaced by its reference
formulation), always in float32: NVlabs' own results on a CPU, or with `force_fp32`. Filter design (a
Kaiser-windowed sinc, or for R a jinc) is numpy, so a generator built from scratch is complete; a
loaded one takes its filters from the file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from nada_utils.models.stylegan2 import NOISE_MODES, MappedGenerator
from nada_utils.models.stylegan3_ops import design_lowpass_filter, filtered_lrelu, modulated_conv2d

# What NVlabs' train.py sets on top of the constructor defaults for --cfg stylegan3-t / stylegan3-r
# (it also sets magnitude_ema_beta = 0.5 ** (batch / 20000), a training-only setting).
CONFIGS = {
    "T": dict(channel_base=32768, channel_max=512, conv_kernel=3, use_radial_filters=False),
    "R": dict(channel_base=65536, channel_max=1024, conv_kernel=1, use_radial_filters=True),
}


class FullyConnectedLayer(nn.Module):
    """Linear layer with equalised learning rate (`weight_gain`, `bias_gain`) and optional lrelu (gain sqrt 2)."""

    def __init__(self, in_features: int, out_features: int, *, activation: str = "linear", lr_multiplier: float = 1,
                 weight_init: float = 1, bias_init=0):
        super().__init__()
        self.in_features, self.out_features, self.activation = in_features, out_features, activation
        self.weight = nn.Parameter(torch.randn(out_features, in_features) * (weight_init / lr_multiplier))
        bias = np.broadcast_to(np.asarray(bias_init, dtype=np.float32), [out_features])
        self.bias = nn.Parameter(torch.from_numpy(bias / lr_multiplier))
        self.weight_gain = lr_multiplier / np.sqrt(in_features)
        self.bias_gain = lr_multiplier

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.linear(x, self.weight.to(x.dtype) * self.weight_gain, self.bias.to(x.dtype) * self.bias_gain)
        return F.leaky_relu(x, 0.2) * np.sqrt(2) if self.activation == "lrelu" else x


def _normalize_2nd_moment(x: torch.Tensor) -> torch.Tensor:
    return x * (x.square().mean(1, keepdim=True) + 1e-8).rsqrt()


class MappingNetwork(nn.Module):
    """z `[N, z_dim]` (and one-hot c `[N, c_dim]`) -> ws `[N, num_ws, w_dim]`; `w_avg` is the training mean of w."""

    def __init__(self, *, z_dim: int, c_dim: int, w_dim: int, num_ws: int, num_layers: int = 2,
                 lr_multiplier: float = 0.01, w_avg_beta: float = 0.998):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.lr_multiplier, self.w_avg_beta = num_layers, lr_multiplier, w_avg_beta
        if c_dim:
            self.embed = FullyConnectedLayer(c_dim, w_dim)
        features = [z_dim + (w_dim if c_dim else 0)] + [w_dim] * num_layers
        for i in range(num_layers):
            fc = FullyConnectedLayer(features[i], features[i + 1], activation="lrelu", lr_multiplier=lr_multiplier)
            setattr(self, f"fc{i}", fc)
        self.register_buffer("w_avg", torch.zeros(w_dim))

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, *, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None) -> torch.Tensor:
        """Truncation pulls W+ indices below `truncation_cutoff` (all by default) towards `w_avg` by `psi`."""
        if z.ndim != 2 or z.shape[1] != self.z_dim:
            raise ValueError(f"z must have shape [N, {self.z_dim}], got {tuple(z.shape)}")
        x = _normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim:
            if c is None or c.shape != (z.shape[0], self.c_dim):
                raise ValueError(f"this generator is class-conditional: pass c of shape [{z.shape[0]}, {self.c_dim}] "
                                 f"(one-hot labels)")
            x = torch.cat([x, _normalize_2nd_moment(self.embed(c.to(torch.float32)))], dim=1)
        for i in range(self.num_layers):
            x = getattr(self, f"fc{i}")(x)
        ws = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            cutoff = self.num_ws if truncation_cutoff is None else truncation_cutoff
            ws[:, :cutoff] = self.w_avg.lerp(ws[:, :cutoff], truncation_psi)
        return ws


class SynthesisInput(nn.Module):
    """Fourier features `[N, channels, H, W]` from w `[N, w_dim]`: frequencies rotated and shifted by the
    affine of w, then by the user's `transform` (an inverse rotation/translation of the image, as
    NVlabs' gen_images.py sets it), faded out above the bandwidth, mixed by a learned matrix."""

    def __init__(self, *, w_dim: int, channels: int, size: int, sampling_rate: float, bandwidth: float):
        super().__init__()
        self.w_dim, self.channels = w_dim, channels
        self.size = (int(size), int(size))  # (width, height)
        self.sampling_rate, self.bandwidth = float(sampling_rate), float(bandwidth)
        freqs = torch.randn(channels, 2)  # drawn from a uniform 2-D disc of radius `bandwidth`
        radii = freqs.square().sum(dim=1, keepdim=True).sqrt()
        freqs = freqs / (radii * radii.square().exp().pow(0.25)) * bandwidth
        self.weight = nn.Parameter(torch.randn(channels, channels))
        self.affine = FullyConnectedLayer(w_dim, 4, weight_init=0, bias_init=[1, 0, 0, 0])
        self.register_buffer("transform", torch.eye(3, 3))
        self.register_buffer("freqs", freqs)
        self.register_buffer("phases", torch.rand(channels) - 0.5)

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        n = w.shape[0]
        t = self.affine(w)  # (cos, sin, tx, ty) of a rotation and translation, learned per w
        t = t / t[:, :2].norm(dim=1, keepdim=True)
        zero, one = torch.zeros_like(t[:, 0]), torch.ones_like(t[:, 0])
        m_r = torch.stack([t[:, 0], -t[:, 1], zero, t[:, 1], t[:, 0], zero, zero, zero, one], 1).view(n, 3, 3)
        m_t = torch.stack([one, zero, -t[:, 2], zero, one, -t[:, 3], zero, zero, one], 1).view(n, 3, 3)
        transforms = m_r @ m_t @ self.transform.unsqueeze(0)
        phases = self.phases.unsqueeze(0) + (self.freqs.unsqueeze(0) @ transforms[:, :2, 2:]).squeeze(2)
        freqs = self.freqs.unsqueeze(0) @ transforms[:, :2, :2]  # [N, C, 2]
        amplitudes = (1 - (freqs.norm(dim=2) - self.bandwidth) / (self.sampling_rate / 2 - self.bandwidth)).clamp(0, 1)
        theta = torch.eye(2, 3, device=w.device)
        theta[0, 0] = 0.5 * self.size[0] / self.sampling_rate
        theta[1, 1] = 0.5 * self.size[1] / self.sampling_rate
        grid = F.affine_grid(theta.unsqueeze(0), [1, 1, self.size[1], self.size[0]], align_corners=False)[0]  # [H, W, 2]
        x = torch.einsum("hwk,nck->nhwc", grid, freqs) + phases[:, None, None, :]
        x = torch.sin(x * (2 * np.pi)) * amplitudes[:, None, None, :]
        x = x @ (self.weight / np.sqrt(self.channels)).t()
        return x.permute(0, 3, 1, 2)


class SynthesisLayer(nn.Module):
    """Modulated conv (k x k, or 1x1 for ToRGB), then the filtered leaky ReLU between two sampling rates.

    x `[N, in_channels, in_size, in_size]`, w `[N, w_dim]` -> `[N, out_channels, out_size, out_size]`.
    The input is scaled by `magnitude_ema ** -0.5`, its training-time mean square.
    """

    def __init__(self, *, w_dim: int, is_torgb: bool, is_critically_sampled: bool, use_fp16: bool, in_channels: int,
                 out_channels: int, in_size: int, out_size: int, in_sampling_rate: int, out_sampling_rate: int,
                 in_cutoff: float, out_cutoff: float, in_half_width: float, out_half_width: float, conv_kernel: int = 3,
                 filter_size: int = 6, lrelu_upsampling: int = 2, use_radial_filters: bool = False,
                 conv_clamp: float | None = 256, magnitude_ema_beta: float = 0.999):
        super().__init__()
        self.w_dim, self.is_torgb, self.is_critically_sampled = w_dim, is_torgb, is_critically_sampled
        self.use_fp16 = use_fp16  # NVlabs' float16 switch on CUDA; recorded only, nada computes in float32
        self.in_channels, self.out_channels = in_channels, out_channels
        self.in_size, self.out_size = (int(in_size),) * 2, (int(out_size),) * 2
        self.in_sampling_rate, self.out_sampling_rate = in_sampling_rate, out_sampling_rate
        self.tmp_sampling_rate = max(in_sampling_rate, out_sampling_rate) * (1 if is_torgb else lrelu_upsampling)
        self.in_cutoff, self.out_cutoff = float(in_cutoff), float(out_cutoff)
        self.in_half_width, self.out_half_width = float(in_half_width), float(out_half_width)
        self.conv_kernel = 1 if is_torgb else conv_kernel
        self.conv_clamp, self.magnitude_ema_beta = conv_clamp, magnitude_ema_beta

        self.affine = FullyConnectedLayer(w_dim, in_channels, bias_init=1)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, self.conv_kernel, self.conv_kernel))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.register_buffer("magnitude_ema", torch.ones([]))

        self.up_factor = int(np.rint(self.tmp_sampling_rate / in_sampling_rate))
        self.down_factor = int(np.rint(self.tmp_sampling_rate / out_sampling_rate))
        tmp = self.tmp_sampling_rate
        if in_sampling_rate * self.up_factor != tmp or out_sampling_rate * self.down_factor != tmp:
            raise ValueError(f"sampling rates {in_sampling_rate} -> {out_sampling_rate} are not integer ratios of {tmp}")
        self.up_taps = filter_size * self.up_factor if self.up_factor > 1 and not is_torgb else 1
        self.down_taps = filter_size * self.down_factor if self.down_factor > 1 and not is_torgb else 1
        self.down_radial = use_radial_filters and not is_critically_sampled
        self.register_buffer("up_filter", design_lowpass_filter(self.up_taps, in_cutoff, in_half_width * 2, tmp))
        self.register_buffer("down_filter", design_lowpass_filter(self.down_taps, out_cutoff, out_half_width * 2, tmp,
                                                                  radial=self.down_radial))
        # Padding that makes the output exactly out_size, with samples placed symmetrically (the paper's App. C.3).
        pad_total = (int(out_size) - 1) * self.down_factor + 1
        pad_total -= (int(in_size) + self.conv_kernel - 1) * self.up_factor
        pad_total += self.up_taps + self.down_taps - 2
        pad_lo = (pad_total + self.up_factor) // 2
        self.padding = [pad_lo, pad_total - pad_lo, pad_lo, pad_total - pad_lo]

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        styles = self.affine(w)
        if self.is_torgb:
            styles = styles / np.sqrt(self.in_channels * self.conv_kernel**2)
        x = modulated_conv2d(x, self.weight, styles, demodulate=not self.is_torgb, padding=self.conv_kernel - 1,
                             input_gain=self.magnitude_ema.rsqrt())
        return filtered_lrelu(x, self.up_filter, self.down_filter, self.bias, up=self.up_factor, down=self.down_factor,
                              padding=self.padding, gain=1 if self.is_torgb else np.sqrt(2),
                              slope=1 if self.is_torgb else 0.2, clamp=self.conv_clamp)


def synthesis_layout(*, img_resolution: int, img_channels: int, channel_base: int, channel_max: int, num_layers: int,
                     num_critical: int, first_cutoff: float, first_stopband: float, last_stopband_rel: float,
                     margin_size: int) -> dict[str, np.ndarray]:
    """Per-layer cutoffs, stopbands, sampling rates, transition half-widths, sizes and channels (index 0 is the
    input, num_layers the ToRGB): the geometric progressions of NVlabs' SynthesisNetwork, in float64."""
    if img_resolution < 4 or img_resolution & (img_resolution - 1):
        raise ValueError(f"img_resolution must be a power of two >= 4, got {img_resolution}")
    if not 0 <= num_critical < num_layers:
        raise ValueError(f"need 0 <= num_critical < num_layers, got num_critical={num_critical}, num_layers={num_layers}")
    last_cutoff = img_resolution / 2
    last_stopband = last_cutoff * last_stopband_rel
    exponents = np.minimum(np.arange(num_layers + 1) / (num_layers - num_critical), 1)
    cutoffs = first_cutoff * (last_cutoff / first_cutoff) ** exponents
    stopbands = first_stopband * (last_stopband / first_stopband) ** exponents
    sampling_rates = np.exp2(np.ceil(np.log2(np.minimum(stopbands * 2, img_resolution))))
    half_widths = np.maximum(stopbands, sampling_rates / 2) - cutoffs
    sizes = sampling_rates + margin_size * 2
    sizes[-2:] = img_resolution  # the last layer and ToRGB run at the output size, without margin
    channels = np.rint(np.minimum((channel_base / 2) / cutoffs, channel_max))
    channels[-1] = img_channels
    return dict(cutoffs=cutoffs, stopbands=stopbands, sampling_rates=sampling_rates, half_widths=half_widths,
                sizes=sizes, channels=channels)


class SynthesisNetwork(nn.Module):
    """ws `[N, num_ws, w_dim]` -> images `[N, img_channels, R, R]`, about [-1, 1]: the input, then layers L0..L{num_layers}
    (the last is the ToRGB), named `L{idx}_{size}_{channels}` as NVlabs names them; output times `output_scale`."""

    def __init__(self, *, w_dim: int, img_resolution: int, img_channels: int, channel_base: int = 32768,
                 channel_max: int = 512, num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2,
                 first_stopband: float = 2**2.1, last_stopband_rel: float = 2**0.3, margin_size: int = 10,
                 output_scale: float = 0.25, num_fp16_res: int = 4, **layer_kwargs):
        super().__init__()
        self.w_dim, self.img_resolution, self.img_channels = w_dim, img_resolution, img_channels
        self.num_layers, self.num_critical, self.margin_size = num_layers, num_critical, margin_size
        self.output_scale, self.num_fp16_res = output_scale, num_fp16_res
        self.num_ws = num_layers + 2
        lay = synthesis_layout(img_resolution=img_resolution, img_channels=img_channels, channel_base=channel_base,
                               channel_max=channel_max, num_layers=num_layers, num_critical=num_critical,
                               first_cutoff=first_cutoff, first_stopband=first_stopband,
                               last_stopband_rel=last_stopband_rel, margin_size=margin_size)
        sr, cut, hw, size, ch = (lay[k] for k in ("sampling_rates", "cutoffs", "half_widths", "sizes", "channels"))
        self.input = SynthesisInput(w_dim=w_dim, channels=int(ch[0]), size=int(size[0]), sampling_rate=sr[0], bandwidth=cut[0])
        self.layer_names: list[str] = []
        for idx in range(num_layers + 1):
            prev = max(idx - 1, 0)
            layer = SynthesisLayer(
                w_dim=w_dim, is_torgb=idx == num_layers, is_critically_sampled=idx >= num_layers - num_critical,
                use_fp16=bool(sr[idx] * 2**num_fp16_res > img_resolution),
                in_channels=int(ch[prev]), out_channels=int(ch[idx]), in_size=int(size[prev]), out_size=int(size[idx]),
                in_sampling_rate=int(sr[prev]), out_sampling_rate=int(sr[idx]), in_cutoff=cut[prev], out_cutoff=cut[idx],
                in_half_width=hw[prev], out_half_width=hw[idx], **layer_kwargs)
            name = f"L{idx}_{layer.out_size[0]}_{layer.out_channels}"
            setattr(self, name, layer)
            self.layer_names.append(name)
        # ONE table of which W+ index each modulated layer reads, in forward order (NVlabs: input ws[0], then
        # layer_names[i] reads ws[i + 1], the ToRGB the last). The forward pass is driven by it.
        self.ws_layout: list[tuple[str, int]] = [("input", 0)] + [(name, i + 1) for i, name in enumerate(self.layer_names)]
        self.memory_format = torch.contiguous_format
        self.checkpointing = False

    def forward(self, ws: torch.Tensor, noise_mode: str = "const", noise=None, **ignored) -> torch.Tensor:
        """Render ws `[N, num_ws, w_dim]`. StyleGAN3 has no noise inputs: `noise_mode` and `noise` are accepted
        (nada's StyleGAN2 callers pass them) and ignored, as are NVlabs' `force_fp32` and the like."""
        if ws.ndim != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        if ignored.get("update_emas"):
            raise ValueError("update_emas is not supported: nada never updates StyleGAN3's magnitude EMAs")
        ws = ws.to(torch.float32)
        (_, first), *layers = self.ws_layout
        x = self.input(ws[:, first])
        if self.memory_format != torch.contiguous_format:
            x = x.contiguous(memory_format=self.memory_format)
        recompute = self.checkpointing and torch.is_grad_enabled()
        for name, index in layers:
            layer = getattr(self, name)
            x = checkpoint(layer, x, ws[:, index], use_reentrant=False) if recompute else layer(x, ws[:, index])
        return x * self.output_scale if self.output_scale != 1 else x


class StyleGAN3Generator(MappedGenerator, nn.Module):
    """StyleGAN3 generator (mapping + synthesis), NVlabs' `training.networks_stylegan3.Generator` in plain PyTorch.

    Constructor arguments are NVlabs' (its SynthesisNetwork and SynthesisLayer keywords flattened in);
    `**CONFIGS["T"]` or `**CONFIGS["R"]` give train.py's two configs. `arch` returns them, JSON-safe.
    """

    def __init__(self, *, img_resolution: int, z_dim: int = 512, c_dim: int = 0, w_dim: int = 512, img_channels: int = 3,
                 mapping_kwargs: dict | None = None, channel_base: int = 32768, channel_max: int = 512,
                 num_layers: int = 14, num_critical: int = 2, first_cutoff: float = 2, first_stopband: float = 2**2.1,
                 last_stopband_rel: float = 2**0.3, margin_size: int = 10, output_scale: float = 0.25,
                 num_fp16_res: int = 4, conv_kernel: int = 3, filter_size: int = 6, lrelu_upsampling: int = 2,
                 use_radial_filters: bool = False, conv_clamp: float | None = 256, magnitude_ema_beta: float = 0.999):
        super().__init__()
        self._arch = dict(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, img_resolution=img_resolution, img_channels=img_channels,
                          mapping_kwargs=dict(mapping_kwargs or {}), channel_base=channel_base, channel_max=channel_max,
                          num_layers=num_layers, num_critical=num_critical, first_cutoff=first_cutoff,
                          first_stopband=first_stopband, last_stopband_rel=last_stopband_rel, margin_size=margin_size,
                          output_scale=output_scale, num_fp16_res=num_fp16_res, conv_kernel=conv_kernel,
                          filter_size=filter_size, lrelu_upsampling=lrelu_upsampling,
                          use_radial_filters=use_radial_filters, conv_clamp=conv_clamp, magnitude_ema_beta=magnitude_ema_beta)
        self.z_dim, self.c_dim, self.w_dim = z_dim, c_dim, w_dim
        self.img_resolution, self.img_channels = img_resolution, img_channels
        own = ("z_dim", "c_dim", "mapping_kwargs")  # the rest are SynthesisNetwork's (and its layers') arguments
        self.synthesis = SynthesisNetwork(**{k: v for k, v in self._arch.items() if k not in own})
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(z_dim=z_dim, c_dim=c_dim, w_dim=w_dim, num_ws=self.num_ws, **self._arch["mapping_kwargs"])
        self.w_avg_source = "unset (zeros)"  # loaders set "checkpoint"
        # The same table as the synthesis network's, with module names relative to G (prefixes of G's parameters).
        self.ws_layout = [(f"synthesis.{name}", index) for name, index in self.synthesis.ws_layout]
        self.num_noises = 0  # no noise inputs; make_noise gives an empty list

    # The layer facts that adapt/freezing.py reads (StyleGAN2's Generator states its own).
    mapping_prefix = "mapping."
    constant_layers = ()  # no constant: the input layer reads W+ index 0, so it is in ws_layout
    has_official_layer_sets = False  # the official code's sets are defined by StyleGAN2's layers

    def is_torgb(self, name: str) -> bool:
        """Whether a layer prefix names the toRGB: the synthesis network's last layer."""
        return name == self.ws_layout[-1][0]

    def synthesis_blocks(self) -> list[list[str]]:
        """No resolution blocks: each layer is a block of its own, the toRGB with the last one."""
        names = [name for name, _ in self.ws_layout]
        return [[n] for n in names[:-2]] + [names[-2:]]

    @property
    def arch(self) -> dict:
        """Constructor arguments that rebuild this architecture (plain types, JSON-safe)."""
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in self._arch.items()}

    @property
    def w_avg(self) -> torch.Tensor:
        """The mapping network's `w_avg` buffer `[w_dim]` (in the state dict as `mapping.w_avg`)."""
        return self.mapping.w_avg

    # Speed options, set on G as for nada's StyleGAN2 Generator; they live on the synthesis network that uses them.
    @property
    def memory_format(self):
        return self.synthesis.memory_format

    @memory_format.setter
    def memory_format(self, value):
        self.synthesis.memory_format = value

    @property
    def checkpointing(self) -> bool:
        return self.synthesis.checkpointing

    @checkpointing.setter
    def checkpointing(self, value: bool):
        self.synthesis.checkpointing = bool(value)

    def make_noise(self, n: int, noise_mode: str, *, device=None, dtype=None) -> list:
        """No noise inputs in StyleGAN3: always `[]` (after checking `noise_mode`)."""
        if noise_mode not in NOISE_MODES:
            raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
        return []


def make_transform(translate: tuple[float, float] = (0.0, 0.0), angle: float = 0.0) -> torch.Tensor:
    """The `synthesis.input.transform` `[3, 3]` that shifts the image content by `translate` image widths (x right,
    y down) and turns it `angle` degrees counter-clockwise: the inverse of gen_images.py's matrix, as it sets it."""
    s, c = np.sin(np.deg2rad(angle)), np.cos(np.deg2rad(angle))
    m = np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])
    return torch.from_numpy(np.linalg.inv(m)).float()
