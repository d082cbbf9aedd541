"""LPIPS-VGG: torchvision's VGG16 layout, LPIPS's formula, loading from the cache, and its use in projection."""

import pytest
import torch

from conftest import make_tiny_generator
from nada_utils.errors import NadaError
from nada_utils.invert.projection import project
from nada_utils.models.lpips import LPIPS, load_lpips
from nada_utils.weights import registry


def random_weights(seed=0):
    """A torchvision-layout VGG16 state dict (features plus one classifier key, which must be ignored) and LPIPS heads."""
    import torchvision

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vgg = torchvision.models.vgg16(weights=None).features.state_dict()
        heads = {f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1) for i, c in enumerate((64, 128, 256, 512, 512))}
    return {**{f"features.{k}": v for k, v in vgg.items()}, "classifier.0.bias": torch.zeros(4)}, heads


@pytest.fixture(scope="module")
def weights():
    return random_weights()


def reference_lpips(vgg_sd, heads, a, b):
    """LPIPS v0.1 as its paper and code define it, on torchvision's own VGG16 module (an independent build)."""
    import torchvision

    features = torchvision.models.vgg16(weights=None).features
    features.load_state_dict({k[9:]: v for k, v in vgg_sd.items() if k.startswith("features.")})
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    slices = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]  # relu1_2 ... relu5_3
    total, xa, xb = 0, (a - shift) / scale, (b - shift) / scale
    for i, (lo, hi) in enumerate(slices):
        xa, xb = features[lo:hi](xa), features[lo:hi](xb)
        na = xa / (xa.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = xb / (xb.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((na - nb) ** 2 * heads[f"lin{i}.model.1.weight"]).sum(1).mean((1, 2))
    return total


def test_matches_the_lpips_formula_on_torchvision_vgg16(weights):
    net = LPIPS().load_weights(*weights)
    g = torch.Generator().manual_seed(3)
    a, b = torch.rand(2, 3, 48, 48, generator=g) * 2 - 1, torch.rand(2, 3, 48, 48, generator=g) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(net(a, b), reference_lpips(*weights, a, b), rtol=1e-4, atol=1e-6)
        assert torch.all(net(a, a) == 0) and torch.all(net(a, b) > 0)
        assert torch.allclose(net(a, b), net(b, a))


def test_gradients_reach_the_image_not_the_network(weights):
    net = LPIPS().load_weights(*weights)
    a = torch.zeros(1, 3, 32, 32, requires_grad=True)
    net(a, torch.rand(1, 3, 32, 32)).sum().backward()
    assert a.grad.abs().sum() > 0 and all(p.grad is None and not p.requires_grad for p in net.parameters())


def test_wrong_files_are_one_line_errors(weights):
    from nada_utils.errors import NadaError

    vgg, heads = weights
    with pytest.raises(NadaError, match="not VGG16 \\+ LPIPS v0.1 weights") as info:
        LPIPS().load_weights(vgg, {"lin0.model.1.weight": torch.zeros(1, 64, 1, 1)})
    assert "\n" not in str(info.value)


def put_in_cache(weights):
    """Write the weights where the registry expects `vgg16` and `lpips-vgg` (NADA_CACHE is a temp folder in tests)."""
    for name, sd in zip(("vgg16", "lpips-vgg"), weights):
        path = registry.local_path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(sd, path)


def test_load_from_cache_or_say_how_to_fetch(weights, tmp_path, monkeypatch):
    monkeypatch.setenv("NADA_CACHE", str(tmp_path))
    net, why = load_lpips()
    assert net is None and "python -m nada_utils fetch vgg16 lpips-vgg" in why
    put_in_cache(weights)
    net, why = load_lpips()
    assert isinstance(net, LPIPS) and "LPIPS-VGG" in why
    a, b = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    assert torch.equal(net(a, b), LPIPS().load_weights(*weights)(a, b))


def test_projection_with_lpips_lowers_it(weights):
    G = make_tiny_generator(32, channel_max=16, w_dim=16, n_mlp=2)
    net = LPIPS().load_weights(*weights)
    with torch.no_grad():
        target = G(torch.randn(1, G.z_dim, generator=torch.Generator().manual_seed(5)), noise_mode="const")
    result = project(G, target, steps=30, latent="w+", lpips=net)
    assert result.loss_name == "LPIPS-VGG" and len(result.losses) == 30
    assert min(result.losses[-5:]) < result.losses[0]


def test_weights_that_are_not_state_dicts_are_one_clear_error():
    """Found by fuzzing: a damaged heads file that unpickles to a function or a tensor, or keys without numbers."""
    lpips = LPIPS()
    for vgg, heads in [({}, torch.ones(2)), (print, {}), ({"features.x.weight": torch.ones(1)}, {})]:
        with pytest.raises(NadaError, match="not VGG16"):
            lpips.load_weights(vgg, heads)
