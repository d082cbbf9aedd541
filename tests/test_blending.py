"""Domain interpolation by weight blending: exact at the ends, linear between, inputs untouched."""

import pytest
import torch

from conftest import make_tiny_generator
from nada_utils.errors import NadaError
from nada_utils.models.blending import GeneratorBlend


def test_ends_are_the_generators_and_the_middle_is_the_mean():
    G0, G1 = make_tiny_generator(seed=0), make_tiny_generator(seed=1)
    before = {k: v.clone() for k, v in G0.state_dict().items()}
    blend = GeneratorBlend(G0, G1)
    z = torch.randn(3, G0.z_dim)
    assert torch.equal(blend.at(0.0)(z, noise_mode="const"), G0(z, noise_mode="const"))
    assert torch.equal(blend.at(1.0)(z, noise_mode="const"), G1(z, noise_mode="const"))
    mid = blend.at(0.5).state_dict()
    for k, v in G0.state_dict().items():
        if v.is_floating_point():
            torch.testing.assert_close(mid[k], (v + G1.state_dict()[k]) / 2)
    assert all(torch.equal(v, before[k]) for k, v in G0.state_dict().items())  # G_frozen never changes
    assert blend.at(0.5) is blend.at(0.25)  # one copy, updated in place


def test_different_architectures_are_refused():
    with pytest.raises(NadaError, match="architectures differ"):
        GeneratorBlend(make_tiny_generator(32), make_tiny_generator(16))
