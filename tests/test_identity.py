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


def psp_features(sd: dict, x: torch.Tensor) -> torch.Tensor:
    """pSp's Backbone (TreB1eN's IR-SE50, eval mode) on raw state-dict tensors, written from its description
    with other ops than the engine's: functional batch norm, PReLU as a where, the stride-s 1x1 max-pool
    shortcut as slicing, and its l2_norm as a division by torch.norm."""
    def bn(h, p):
        return F.batch_norm(h, sd[p + ".running_mean"], sd[p + ".running_var"], sd[p + ".weight"], sd[p + ".bias"],
                            training=False, eps=1e-5)

    def prelu(h, p):
        return torch.where(h >= 0, h, h * sd[p + ".weight"].view(1, -1, 1, 1))

    h = prelu(bn(F.conv2d(x, sd["input_layer.0.weight"], padding=1), "input_layer.1"), "input_layer.2")
    unit = 0
    for (c_in, depth, n) in IRSE50.STAGES:
        for i in range(n):
            p, stride = f"body.{unit}", 2 if i == 0 else 1
            r = bn(h, p + ".res_layer.0")
            r = prelu(F.conv2d(r, sd[p + ".res_layer.1.weight"], padding=1), p + ".res_layer.2")
            r = bn(F.conv2d(r, sd[p + ".res_layer.3.weight"], stride=stride, padding=1), p + ".res_layer.4")
            s = r.mean((2, 3), keepdim=True)
            s = torch.sigmoid(F.conv2d(F.relu(F.conv2d(s, sd[p + ".res_layer.5.fc1.weight"])), sd[p + ".res_layer.5.fc2.weight"]))
            r = r * s
            if (p + ".shortcut_layer.0.weight") in sd:
                short = bn(F.conv2d(h, sd[p + ".shortcut_layer.0.weight"], stride=stride), p + ".shortcut_layer.1")
            else:
                short = h[..., ::stride, ::stride]
            h = r + short
            unit += 1
    h = bn(h, "output_layer.0").flatten(1)
    h = h @ sd["output_layer.3.weight"].T + sd["output_layer.3.bias"]
    h = F.batch_norm(h, sd["output_layer.4.running_mean"], sd["output_layer.4.running_var"],
                     sd["output_layer.4.weight"], sd["output_layer.4.bias"], training=False, eps=1e-5)
    return torch.div(h, torch.norm(h, 2, 1, True))


def psp_id_loss(sd, y_hat, y):
    """The official code's IDLoss.forward (pSp's, with the pool to 256 of StyleGAN-NADA's copy): the mean
    over samples of 1 - <f(y_hat), f(y)>, y's features detached."""
    y_feats, y_hat_feats = psp_features(sd, psp_crop(y)).detach(), psp_features(sd, psp_crop(y_hat))
    return sum(1 - y_hat_feats[i].dot(y_feats[i]) for i in range(y.shape[0])) / y.shape[0]


def random_irse50(widths=None):
    """An IR-SE50 in the published layout (pSp's widths unless `widths`) with random weights and batch
    statistics (eval-mode BN is not the identity)."""
    torch.manual_seed(0)
    net = IRSE50(widths)
    for m in net.modules():
        if isinstance(m, (torch.nn.BatchNorm2d, torch.nn.BatchNorm1d)):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.1)
    return net.eval()


def face_pair(size: int, change: float, dtype=torch.float32):
    """A smooth random "frozen" image and an "adapted" one that differs from it by `change` (both [2, 3, size, size])."""
    g = torch.Generator().manual_seed(1)
    smooth = [F.interpolate(torch.rand(2, 3, 32, 32, generator=g) * 2 - 1, size=size, mode="bilinear") for _ in range(2)]
    return smooth[0].to(dtype), (smooth[0] + change * smooth[1]).to(dtype)


def grad_of(loss_fn, image):
    """(loss, gradient of the loss with respect to `image`)."""
    x = image.clone().requires_grad_(True)
    loss = loss_fn(x)
    return loss.item(), torch.autograd.grad(loss, x)[0].double()


def relative(a, b) -> float:
    return ((a - b).norm() / b.norm()).item()


def test_identity_loss_and_its_gradient_are_psps():
    """The loss and its gradient with respect to the adapted image are pSp's IDLoss: to 1e-9 in float64, where
    rounding is out of the way, at every size and for nearly equal faces too (the pool to 256, the crop and the
    pool to 112 included). Narrower stages than pSp's keep it fast: the same units, keys and maths."""
    net = random_irse50(widths=(16, 32, 32, 64))
    sd = {k: v.double() for k, v in net.state_dict().items()}
    ours = IdentityLoss(IRSE50((16, 32, 32, 64)).double())
    ours.net.load_state_dict(sd)
    for size, change in ((1024, 0.02), (256, 0.0005), (64, 0.02)):
        y, y_hat = face_pair(size, change, torch.float64)
        mine, g_mine = grad_of(lambda x: ours(y, x), y_hat)
        theirs, g_theirs = grad_of(lambda x: psp_id_loss(sd, x, y), y_hat)
        assert abs(mine - theirs) < 1e-12 and relative(g_mine, g_theirs) < 1e-9, size


def test_in_float32_the_gradient_is_as_exact_as_psps_own():
    """In float32 the gradient of 1 - cos is the part of f(y) orthogonal to f(y_hat), of size sin(angle), while
    each feature carries float32 rounding of about 1e-6: the relative error is their ratio, 1e-3 for nearly equal
    faces in any float32 implementation, pSp's included. nada's float32 gradient is no further from the exact one
    than pSp's formulation in float32 is, at every distance."""
    net = random_irse50()
    sd32, sd64 = net.state_dict(), {k: v.double() for k, v in net.state_dict().items()}
    ours = IdentityLoss(net)
    errors = []
    for change in (0.3, 0.005):
        y, y_hat = face_pair(256, change)
        _, exact = grad_of(lambda x: psp_id_loss(sd64, x, y.double()), y_hat.double())
        _, mine = grad_of(lambda x: ours(y, x), y_hat)
        _, theirs = grad_of(lambda x: psp_id_loss(sd32, x, y), y_hat)
        errors.append(relative(mine, exact))
        assert relative(mine, exact) < 2 * relative(theirs, exact) + 1e-6, change
    assert errors[0] < 2e-4 and errors[1] > 5 * errors[0]  # sixty times closer faces: many times the relative error
