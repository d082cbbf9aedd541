"""Losses against hand-computed values, the zero-difference case, CLIP preprocessing and text directions."""

import math

import pytest
import torch
import torch.nn.functional as F

from nada_utils import NadaError
from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.losses import directional_loss, global_loss, l2_regulariser, unit_direction
from nada_utils.adapt.prompt_templates import IMAGENET_TEMPLATES
from nada_utils.models.clip_arch import CLIP_MEAN, CLIP_STD, clip_preprocess, make_tiny_clip

S = 1 / math.sqrt(2)


def test_directional_loss_hand_computed():
    frozen = torch.tensor([[2.0, 0.0], [0.0, 3.0]])  # normalised: [1, 0], [0, 1]
    train = torch.tensor([[0.0, 5.0], [0.0, 1.0]])   # normalised: [0, 1], [0, 1]
    d = torch.tensor([0.0, 1.0])
    # Sample 1: ΔI = [-1, 1], cos with [0, 1] = 1/sqrt(2). Sample 2: ΔI = 0 -> cos 0 (clamped norm).
    expected = ((1 - S) + 1.0) / 2
    assert directional_loss(frozen, train, d).item() == pytest.approx(expected, abs=1e-6)
    # Opposite direction -> 1 + cos.
    assert directional_loss(frozen[:1], train[:1], -d).item() == pytest.approx(1 + S, abs=1e-6)


def test_directional_loss_zero_difference_is_finite_and_points_along_direction():
    emb = torch.tensor([[0.6, 0.8, 0.0]])
    train = emb.clone().requires_grad_(True)
    d = torch.tensor([0.0, 0.0, 1.0])
    loss = directional_loss(emb, train, d)
    assert loss.item() == 1.0
    loss.backward()
    assert torch.isfinite(train.grad).all()
    # Gradient descent moves emb_train towards +d.
    assert (-train.grad @ d).item() > 0



def test_the_floor_makes_the_loss_linear_below_it_and_leaves_the_cosine_above():
    frozen = torch.tensor([[1.0, 0.0, 0.0]])
    d = torch.tensor([0.0, 1.0, 0.0])

    def loss_and_grad(step, floor):
        train = (frozen + torch.tensor([[0.0, step, step]])).requires_grad_(True)
        loss = directional_loss(frozen, train, d, floor=floor)
        loss.backward()
        return loss.item(), train.grad.norm().item()

    # A large change: the reference's 1 - cos(ΔI, ΔT) whatever the floor.
    delta = F.normalize(torch.tensor([[1.0, 1.0, 1.0]]), dim=-1) - frozen
    assert loss_and_grad(1.0, 0.1)[0] == pytest.approx(1 - F.cosine_similarity(delta, d[None]).item(), abs=1e-6)
    assert loss_and_grad(1.0, 0.1) == pytest.approx(loss_and_grad(1.0, 1e-6))
    # Tiny changes: without a floor the gradient grows as 1 / |ΔI| (the stall docs/REFERENCE.md describes, "the start of training"); with it,
    # the gradient keeps the size it has at |ΔI| = floor.
    tiny, smaller = loss_and_grad(1e-3, 0.1), loss_and_grad(1e-5, 0.1)
    assert smaller[1] == pytest.approx(tiny[1], rel=1e-2) and tiny[1] < 20
    assert loss_and_grad(1e-5, 1e-6)[1] > 100 * loss_and_grad(1e-3, 1e-6)[1] / 2
    assert 1 - tiny[0] == pytest.approx(1e-3 / 0.1, rel=1e-2)  # linear: ΔI·ΔT / floor

def test_global_loss_and_l2():
    emb = torch.tensor([[1.0, 0.0], [0.0, 2.0]])
    text = torch.tensor([1.0, 1.0])
    assert global_loss(emb, text).item() == pytest.approx(1 - S, abs=1e-6)
    assert l2_regulariser(torch.zeros(1, 3, 2, 2), torch.ones(1, 3, 2, 2)).item() == 1.0


def test_unit_direction_equals_per_template_mean():
    gen = torch.Generator().manual_seed(0)
    src, tgt = torch.randn(79, 16, generator=gen), torch.randn(79, 16, generator=gen)
    n = torch.nn.functional.normalize
    reference = n((n(tgt, dim=-1) - n(src, dim=-1)).mean(0), dim=-1)
    assert torch.allclose(unit_direction(tgt, src), reference, atol=1e-6)


def test_clip_preprocess():
    img = torch.zeros(2, 3, 64, 48, requires_grad=True)  # [-1, 1] zero -> 0.5 grey
    out = clip_preprocess(img, 32)
    assert out.shape == (2, 3, 32, 32)
    expected = (0.5 - torch.tensor(CLIP_MEAN)) / torch.tensor(CLIP_STD)
    assert torch.allclose(out[0, :, 5, 5], expected, atol=1e-5)
    out.sum().backward()
    assert img.grad is not None and torch.isfinite(img.grad).all()


def test_templates_are_the_reference_79():
    assert len(IMAGENET_TEMPLATES) == 79 and len(set(IMAGENET_TEMPLATES)) == 79
    assert all(t.count("{}") == 1 for t in IMAGENET_TEMPLATES)
    assert "a photo of many {}." not in IMAGENET_TEMPLATES


@pytest.fixture(scope="module")
def guide():
    return ClipGuide([("tiny-a", make_tiny_clip(seed=0), 1.0), ("tiny-b", make_tiny_clip(seed=1, image_resolution=64), 0.5)])


def test_text_directions_unit_and_recomputed_for_new_prompts(guide):
    d1 = guide.text_directions("photo", "sketch")
    assert len(d1) == 2 and all(abs(d.norm().item() - 1) < 1e-5 for d in d1)
    d2 = guide.text_directions("photo", "anime")
    assert not torch.allclose(d1[0], d2[0])
    assert torch.equal(guide.text_directions("photo", "sketch")[0], d1[0])
    plain = guide.text_directions("photo", "sketch", templates=False)
    assert not torch.allclose(plain[0], d1[0])


@pytest.mark.parametrize("source,target,needle", [("", "sketch", "must not be empty"), ("photo", "  ", "must not be empty"),
                                                  ("photo", "photo", "the same text"), ("photo", "word " * 80, "longer than CLIP's 77 tokens")])
def test_bad_prompts(guide, source, target, needle):
    with pytest.raises(NadaError, match=needle):
        guide.text_directions(source, target, templates=False)


def test_non_ascii_prompt_works(guide):
    assert torch.isfinite(guide.text_directions("photo", "水彩画 aquarelle, café")[0]).all()


def test_guide_losses_flow_to_images(guide):
    frozen = torch.rand(2, 3, 32, 32) * 2 - 1
    train = (frozen + 0.1 * torch.randn_like(frozen)).requires_grad_(True)
    total, terms = guide.directional(frozen, train, guide.text_directions("photo", "sketch"))
    assert set(terms) == {"tiny-a", "tiny-b"}
    assert total.item() == pytest.approx(terms["tiny-a"].item() + 0.5 * terms["tiny-b"].item(), rel=1e-5)
    total.backward()
    assert torch.isfinite(train.grad).all() and train.grad.abs().sum() > 0
    g = guide.global_(train, guide.text_targets("sketch"))
    assert 0 <= g.item() <= 3
