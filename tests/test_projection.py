"""Projection into W / W+: it reconstructs what the generator can make, never changes G, checks its input."""

import pytest
import torch

from conftest import make_tiny_generator
from nada_utils.errors import NadaError
from nada_utils.invert.projection import project, psnr
from nada_utils.models.generator_io import load_generator


@pytest.fixture(scope="module")
def G():
    return make_tiny_generator(16, channel_max=16, w_dim=16, n_mlp=2)


def test_projection_recovers_an_image_of_the_generator():
    # A trained generator (random weights make noise-dominated images that no latent explains).
    G = load_generator("mini-photo-2")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    with torch.no_grad():
        c = torch.nn.functional.one_hot(torch.tensor([0]), 3).float()  # a circle
        target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(7)), c, noise_mode="const")
        start = G.synthesis(G.w_avg.expand(1, G.num_ws, -1), noise_mode="const")
    result = project(G, target, steps=150, latent="w+")
    with torch.no_grad():
        rec = G.synthesis(result.ws, noise=result.noise)
    assert result.ws.shape == (1, G.num_ws, G.w_dim) and result.latent == "w+"
    assert result.loss_name == "pixel MSE" and len(result.losses) == 150
    assert psnr(rec, target) > psnr(start, target) + 6  # far closer than the mean image
    assert sum(result.losses[-10:]) < 0.25 * sum(result.losses[:10])
    assert all(torch.equal(v, before[k]) for k, v in G.state_dict().items())  # G untouched, stored noise included


def test_a_class_conditional_generator_is_projected_into_the_w_of_all_its_classes():
    G = load_generator("mini-photo-2")  # class = shape
    with torch.no_grad():
        c = torch.nn.functional.one_hot(torch.tensor([2]), 3).float()  # a triangle
        target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(3)), c, noise_mode="const")
    result = project(G, target, steps=60, latent="w+")
    with torch.no_grad():
        assert psnr(G.synthesis(result.ws, noise=result.noise), target) > 22


def test_w_latent_is_one_w_repeated(G):
    target = torch.zeros(3, 16, 16)
    result = project(G, target, steps=3, latent="w")
    assert torch.equal(result.ws[:, 0], result.ws[:, -1])


def test_a_stylegan3_without_noise_inputs_is_projected():
    G = load_generator("random:sg3-t-tiny")  # found by running inversion.ipynb on one: it indexed the empty noise list
    with torch.no_grad():
        target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(1)))
    result = project(G, target, steps=20, latent="w+")
    assert result.noise == [] and result.losses[-1] < result.losses[0]


def test_bad_inputs(G):
    with pytest.raises(NadaError, match="needs \\(3, 16, 16\\).*load_image"):
        project(G, torch.zeros(3, 32, 32), steps=1)
    with pytest.raises(NadaError, match="latent must be 'w' or 'w\\+'"):
        project(G, torch.zeros(3, 16, 16), latent="z")


def test_psnr():
    a = torch.zeros(1, 3, 4, 4)
    assert psnr(a, a) == float("inf")
    assert psnr(a, a + 0.2) == pytest.approx(10 * torch.log10(torch.tensor(4 / 0.04)).item())
