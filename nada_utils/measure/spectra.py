"""How much of an image's energy lies at high spatial frequencies, and in spikes on the pixel grid.

StyleGAN3's official README warns that adapting it can bring "grid artefacts": patterns fixed to the
pixel grid, which show in a power spectrum as spikes at the grid's own frequencies (periods of 2 and
4 pixels, from its up- and downsampling by 2) rather than as a smooth fall-off. Two figures, each
over a batch, on grey images with their mean removed and a Hann window (so the image's borders do
not count as edges):
- `high_frequency_share`: the share of spectral power above `cutoff` x Nyquist (radially);
- `grid_share`: the share of spectral power in the 3x3 bins round each grid frequency (fx, fy in
  {0, +-N/4, N/2}, not both 0). Shares of the whole power, not ratios to a ring's median: the
  window's leakage makes the high-frequency rings of a smooth image nearly empty, and a ratio to
  them explodes where nothing is there (tested).
"""

from __future__ import annotations

import torch


def power_spectrum(images: torch.Tensor) -> torch.Tensor:
    """Mean power spectrum `[H, W]` of images `[N, 3, H, W]` in [-1, 1], zero frequency at `[H//2, W//2]`."""
    gray = images.float().mean(1)
    gray = gray - gray.mean((1, 2), keepdim=True)
    h, w = gray.shape[-2:]
    window = torch.hann_window(h, periodic=False)[:, None] * torch.hann_window(w, periodic=False)[None, :]
    spectrum = torch.fft.fft2(gray * window.to(gray.device)).abs().square().mean(0)
    return torch.fft.fftshift(spectrum).cpu()


def _radius(h: int, w: int) -> torch.Tensor:
    """Radial frequency of each bin of a shifted spectrum, Nyquist = 1."""
    fy = (torch.arange(h) - h // 2).float() / (h / 2)
    fx = (torch.arange(w) - w // 2).float() / (w / 2)
    return torch.sqrt(fy[:, None] ** 2 + fx[None, :] ** 2)


def high_frequency_share(images: torch.Tensor, cutoff: float = 0.5) -> float:
    """Share of the power (the zero frequency left out) at radial frequencies above `cutoff` x Nyquist."""
    p = power_spectrum(images)
    r = _radius(*p.shape)
    total = p[r > 0].sum()
    return float(p[r > cutoff].sum() / total.clamp(min=1e-30))


def grid_share(images: torch.Tensor) -> float:
    """Share of the power (the zero frequency left out) in the 3x3 bins round each grid frequency: fx and
    fy in {0, N/4, N/2}, not both 0 (periods of 2 and 4 px). White noise puts about 0.07 there (72 of
    the ~1,000 bins of a 32 px image); smooth images almost none; a checkerboard nearly all."""
    p = power_spectrum(images)
    h, w = p.shape
    r = _radius(h, w)
    cy, cx = h // 2, w // 2
    mask = torch.zeros(h, w, dtype=torch.bool)
    for fy in (0, h // 4, h // 2, -(h // 4)):
        for fx in (0, w // 4, w // 2, -(w // 4)):
            if fy == fx == 0:
                continue
            y, x = (cy + fy) % h, (cx + fx) % w  # +N/2 wraps to the first row / column after the shift
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    mask[(y + dy) % h, (x + dx) % w] = True
    total = p[r > 0].sum()
    return float(p[mask & (r > 0)].sum() / total.clamp(min=1e-30))
