"""The spectral figures of the grid-artefact measurement, against patterns whose answer is known."""

import torch
import torch.nn.functional as F

from nada_utils.measure.spectra import grid_share, high_frequency_share


def blurred_noise(n=8, size=32, sigma=1.5):
    x = torch.randn(n, 3, size, size, generator=torch.Generator().manual_seed(0))
    k = torch.exp(-torch.arange(-4, 5).float() ** 2 / (2 * sigma**2))
    k = (k / k.sum()).view(1, 1, 1, 9).expand(3, 1, 1, 9)
    x = F.conv2d(F.pad(x, (4, 4, 0, 0), mode="circular"), k, groups=3)
    return F.conv2d(F.pad(x, (0, 0, 4, 4), mode="circular"), k.transpose(2, 3), groups=3)


def test_smooth_images_have_little_of_either_and_white_noise_much_high_frequency():
    smooth = blurred_noise()
    white = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert high_frequency_share(smooth) < 0.02 and grid_share(smooth) < 0.02
    assert high_frequency_share(white) > 0.7
    assert high_frequency_share(torch.ones(8, 3, 32, 32)) == 0.0  # a blank page has no spectrum at all


def test_a_grid_pattern_shows_in_the_grid_share_and_unstructured_detail_does_not():
    smooth = blurred_noise()
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = smooth + 0.05 * ((-1.0) ** (yy + xx))
    period4 = smooth + 0.05 * torch.cos(torch.pi / 2 * xx)
    detail = smooth + 0.05 * torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    assert grid_share(checker) > 0.15 and grid_share(period4) > 0.08
    # As much high-frequency energy, no grid: the grid share stays low.
    assert high_frequency_share(detail) > high_frequency_share(period4) and grid_share(detail) < 0.03
