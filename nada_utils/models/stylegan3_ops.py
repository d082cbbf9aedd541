"""StyleGAN3's signal processing in plain PyTorch: filter design, upfirdn2d, the filtered leaky ReLU and
the modulated convolution, as NVlabs' reference implementations compute them (`models/stylegan3.py`
builds the layers from them). NVlabs' fused CUDA kernel computes the same; this path runs on any device.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F


def _kaiser_beta(numtaps: int, width: float) -> float:
    """Kaiser window beta for a transition `width` relative to Nyquist (scipy's kaiser_atten + kaiser_beta)."""
    atten = 2.285 * (numtaps - 1) * np.pi * width + 7.95
    if atten > 50:
        return 0.1102 * (atten - 8.7)
    if atten > 21:
        return 0.5842 * (atten - 21) ** 0.4 + 0.07886 * (atten - 21)
    return 0.0


def design_lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, *, radial: bool = False) -> torch.Tensor | None:
    """NVlabs' FIR low-pass: None for 1 tap; a separable Kaiser-windowed sinc `[numtaps]` (scipy's firwin)
    or, with `radial`, a radially symmetric jinc `[numtaps, numtaps]`; normalised to sum 1."""
    if numtaps == 1:
        return None
    window = np.kaiser(numtaps, _kaiser_beta(numtaps, width / (fs / 2)))
    if not radial:
        m = np.arange(numtaps) - (numtaps - 1) / 2
        c = cutoff / (fs / 2)
        f = c * np.sinc(c * m) * window
    else:
        x = (np.arange(numtaps) - (numtaps - 1) / 2) / fs
        r = np.hypot(*np.meshgrid(x, x))
        # numpy has no Bessel J1; torch's float64 one is accurate to ~1e-15.
        j1 = torch.special.bessel_j1(torch.from_numpy(2 * cutoff * np.pi * r)).numpy()
        f = j1 / (np.pi * r) * np.outer(window, window)
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def upfirdn2d(x: torch.Tensor, f: torch.Tensor | None, *, up: int = 1, down: int = 1,
              padding: tuple[int, int, int, int] = (0, 0, 0, 0), gain: float = 1.0) -> torch.Tensor:
    """Upsample by zero insertion, pad `(x0, x1, y0, y1)` (negative crops), FIR-filter, keep every `down`-th pixel.

    x `[N, C, H, W]`; f None (identity), `[taps]` (separable: along width, then height) or `[kh, kw]`.
    A true convolution (the filter is flipped), with `gain` spread over the passes, as NVlabs' upfirdn2d.
    """
    n, c, h, w = x.shape
    if up > 1 and down == 1 and f is not None:
        return _upsample(x, f * gain ** (f.ndim / 2), up, padding)
    if up > 1:
        x = F.pad(x.reshape(n, c, h, 1, w, 1), (0, up - 1, 0, 0, 0, up - 1)).reshape(n, c, h * up, w * up)
    x = F.pad(x, tuple(padding))
    if f is None:
        return (x * gain if gain != 1 else x)[:, :, ::down, ::down]
    f = (f * gain ** (f.ndim / 2)).to(x.dtype).flip(list(range(f.ndim)))
    # A strided convolution computes only the samples the downsampling keeps.
    if f.ndim == 1:
        x = F.conv2d(x, f.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c, stride=(1, down))
        return F.conv2d(x, f.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c, stride=(down, 1))
    return F.conv2d(x, f[None, None].expand(c, 1, *f.shape), groups=c, stride=down)


def _upsample(x: torch.Tensor, f: torch.Tensor, up: int, padding) -> torch.Tensor:
    """upfirdn2d with up > 1 and down = 1 as transposed convolutions, which never multiply the inserted zeros
    (`up` to `up**2` times fewer operations). With the unflipped filter it is the same true convolution;
    output sample j is the transposed convolution's sample j + taps - 1 - pad_lo, so a pad by
    (pad_lo - taps + 1, pad_hi + up - taps) per axis (negative crops) places the window."""
    c = x.shape[1]
    px0, px1, py0, py1 = padding
    f = f.to(x.dtype)
    if f.ndim == 1:
        k = f.numel()
        x = F.conv_transpose2d(x, f.view(1, 1, 1, k).expand(c, 1, 1, k).contiguous(), stride=(1, up), groups=c)
        x = F.pad(x, (px0 - k + 1, px1 + up - k))
        x = F.conv_transpose2d(x, f.view(1, 1, k, 1).expand(c, 1, k, 1).contiguous(), stride=(up, 1), groups=c)
        return F.pad(x, (0, 0, py0 - k + 1, py1 + up - k))
    kh, kw = f.shape
    x = F.conv_transpose2d(x, f[None, None].expand(c, 1, kh, kw).contiguous(), stride=up, groups=c)
    return F.pad(x, (px0 - kw + 1, px1 + up - kw, py0 - kh + 1, py1 + up - kh))


def filtered_lrelu(x: torch.Tensor, fu, fd, b: torch.Tensor, *, up: int, down: int, padding, gain: float,
                   slope: float, clamp: float | None) -> torch.Tensor:
    """Bias, upsample (gain up^2), leaky ReLU times `gain`, clamp, downsample: NVlabs' reference order.

    The bias goes in before upsampling, so near the borders it is filtered like the signal (NVlabs does the same)."""
    x = x + b.to(x.dtype).view(1, -1, 1, 1)
    x = upfirdn2d(x, fu, up=up, padding=padding, gain=up**2)
    if slope != 1:
        x = F.leaky_relu(x, slope)
    if gain != 1:
        x = x * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return upfirdn2d(x, fd, down=down)


def modulated_conv2d(x: torch.Tensor, weight: torch.Tensor, styles: torch.Tensor, *, demodulate: bool,
                     padding: int, input_gain: torch.Tensor) -> torch.Tensor:
    """x `[N, I, H, W]`, weight `[O, I, k, k]`, styles `[N, I]` -> `[N, O, H + 2p - k + 1, ...]`, one grouped conv."""
    n, in_c = styles.shape
    out_c, _, kh, kw = weight.shape
    if demodulate:
        # NVlabs' pre-normalisation, for fp16 range. The style scale is one number over the whole batch;
        # demodulation cancels it up to the 1e-8, so a sample's image barely depends on its batch.
        weight = weight * weight.square().mean([1, 2, 3], keepdim=True).rsqrt()
        styles = styles * styles.square().mean().rsqrt()
    w = weight.unsqueeze(0) * styles.view(n, 1, in_c, 1, 1)
    if demodulate:
        w = w * (w.square().sum([2, 3, 4]) + 1e-8).rsqrt().view(n, out_c, 1, 1, 1)
    w = w * input_gain
    x = F.conv2d(x.reshape(1, n * in_c, *x.shape[2:]), w.reshape(n * out_c, in_c, kh, kw).to(x.dtype),
                 padding=padding, groups=n)
    return x.reshape(n, out_c, *x.shape[2:])
