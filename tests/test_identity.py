"""The identity loss's face crop is pSp's (also e4e's and StyleCLIP's): pool to 256, crop, pool to 112."""

import torch
import torch.nn.functional as F

from nada_utils.models.identity import IRSE50, IdentityLoss, face_crop


def psp_crop(x):
    """pSp's IDLoss.extract_feats before the network, written from its description."""
    if x.shape[2] != 256:
        x = torch.nn.AdaptiveAvgPool2d((256, 256))(x)
    return torch.nn.AdaptiveAvgPool2d((112, 112))(x[:, :, 35:223, 32:220])


def test_face_crop_is_psps_at_every_size():
    g = torch.Generator().manual_seed(0)
    for size in (1024, 512, 256, 64):
        x = torch.rand(2, 3, size, size, generator=g) * 2 - 1
        assert torch.allclose(face_crop(x), psp_crop(x), atol=1e-6)
    # The one-pool crop at full size (nada's before) is a different image at 1024 px.
    x = torch.rand(1, 3, 1024, 1024, generator=g) * 2 - 1
    one_pool = F.adaptive_avg_pool2d(x[..., 140:892, 128:880], (112, 112))
    assert (one_pool - face_crop(x)).abs().max() > 1e-3


def test_identity_loss_is_zero_for_the_same_face_and_positive_otherwise():
    torch.manual_seed(0)
    loss = IdentityLoss(IRSE50(widths=(16, 16, 32, 32)))
    a, b = torch.rand(2, 1, 3, 256, 256) * 2 - 1
    assert loss(a, a).abs() < 1e-5
    assert loss(a, b) > 1e-4
