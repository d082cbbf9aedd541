"""Shared fixtures: tiny generators with seeded random weights, and an isolated weight cache."""

import pytest
import torch

from nada_utils.models.stylegan2 import Generator, default_channels


def make_tiny_generator(img_resolution=32, *, channel_max=16, n_mlp=2, w_dim=32, c_dim=0, seed=0,
                        channel_multiplier=2) -> Generator:
    """A small Generator whose every parameter (noise strengths and biases too) is non-trivial."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = Generator(img_resolution, w_dim=w_dim, n_mlp=n_mlp, c_dim=c_dim,
                      channels=default_channels(img_resolution, channel_multiplier, channel_max))
        with torch.no_grad():
            # Fresh StyleGAN2 layers start with zero biases and noise strengths; randomise them so a
            # mix-up of those tensors cannot go unnoticed.
            for name, p in G.named_parameters():
                if name.endswith(("noise.weight", "activate.bias", "to_rgb1.bias")) or (".bias" in name and "to_rgbs" in name):
                    p.copy_(torch.randn_like(p) * 0.3)
            G.w_avg.copy_(torch.randn(w_dim) * 0.1)
    return G.eval()


@pytest.fixture
def tiny_G():
    return make_tiny_generator()


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path, monkeypatch):
    """No test reads or writes the user's weight cache, or reaches a mirror."""
    monkeypatch.setenv("NADA_CACHE", str(tmp_path / "nada_cache"))
    monkeypatch.delenv("NADA_MIRROR", raising=False)
