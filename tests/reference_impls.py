"""Independent reference forwards of StyleGAN2, written from the published architectures.

They work on raw state dicts, one sample at a time, and formulate each op differently from the
engine (no grouped convolutions; transposed convolution as zero insertion plus a true convolution;
NVlabs' "upsample, FIR-filter, then convolve" path instead of "convolve, then blur"). If the
engine's layout, scaling or a kernel flip were wrong, these would disagree with it.
"""

import math

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2)
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0])


def fir_kernel() -> torch.Tensor:
    k = FIR[:, None] * FIR[None, :]
    return k / k.sum()


def zero_insert(x: torch.Tensor, up: int) -> torch.Tensor:
    n, c, h, w = x.shape
    out = x.new_zeros(n, c, h * up, w * up)
    out[:, :, ::up, ::up] = x
    return out


def true_conv_per_channel(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    c = x.shape[1]
    return F.conv2d(x, f.flip(0, 1)[None, None].repeat(c, 1, 1, 1), groups=c)


def upfirdn(x, *, up=1, pad=(0, 0), gain=1.0):
    """NVlabs/rosinality upfirdn2d semantics: zero-insert, pad, true convolution with the FIR * gain."""
    x = zero_insert(x, up) if up > 1 else x
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    return true_conv_per_channel(x, fir_kernel() * gain)


def lrelu(x, bias):
    return F.leaky_relu(x + bias.view(1, -1, 1, 1), 0.2) * SQRT2


# ------------------------------------------------------------------ rosinality

def ros_mapping(sd, z, lr_mul=0.01):
    x = z * torch.rsqrt(z.pow(2).mean(1, keepdim=True) + 1e-8)
    i = 1
    while f"style.{i}.weight" in sd:
        wt, b = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        x = F.leaky_relu(x @ (wt * lr_mul / math.sqrt(wt.shape[1])).t() + b * lr_mul, 0.2) * SQRT2
        i += 1
    return x


def ros_modconv(sd, p, x, w, *, demod=True, up=False):
    """One sample: x [1, C, H, W], w [w_dim]."""
    mw, mb = sd[f"{p}.modulation.weight"], sd[f"{p}.modulation.bias"]
    style = mw @ w / math.sqrt(mw.shape[1]) + mb
    weight = sd[f"{p}.weight"][0]
    k = weight.shape[-1]
    weight = weight / math.sqrt(weight[0].numel()) * style.view(1, -1, 1, 1)
    if demod:
        weight = weight / torch.sqrt(weight.pow(2).sum((1, 2, 3), keepdim=True) + 1e-8)
    if up:
        # conv_transpose2d(stride 2) == zero insertion to 2H-1, full padding, true convolution.
        z = zero_insert(x, 2)[:, :, :-1, :-1]
        out = F.conv2d(F.pad(z, (k - 1,) * 4), weight.flip(2, 3))
        return upfirdn(out, pad=(1, 1), gain=4.0)
    return F.conv2d(x, weight, padding=k // 2)


def ros_synthesis(sd, ws, noise):
    """ws [N, num_ws, w_dim], noise: list of [1,1,r,r] or None (skip). Returns [N, 3, H, W]."""
    outs = []
    nblocks = len([k for k in sd if k.startswith("to_rgbs.") and k.endswith(".conv.weight")])
    for n in range(ws.shape[0]):
        wn = ws[n]

        def styled(p, x, i, noise_i, up=False):
            x = ros_modconv(sd, f"{p}.conv", x, wn[i], up=up)
            if noise[noise_i] is not None:
                x = x + sd[f"{p}.noise.weight"] * noise[noise_i]
            return lrelu(x, sd[f"{p}.activate.bias"])

        def rgb(p, x, i):
            return ros_modconv(sd, f"{p}.conv", x, wn[i], demod=False) + sd[f"{p}.bias"]

        x = sd["input.input"]
        x = styled("conv1", x, 0, 0)
        img = rgb("to_rgb1", x, 1)
        for b in range(nblocks):
            x = styled(f"convs.{2 * b}", x, 2 * b + 1, 2 * b + 1, up=True)
            x = styled(f"convs.{2 * b + 1}", x, 2 * b + 2, 2 * b + 2)
            img = rgb(f"to_rgbs.{b}", x, 2 * b + 3) + upfirdn(img, up=2, pad=(2, 1), gain=4.0)
        outs.append(img)
    return torch.cat(outs)


# ------------------------------------------------------------------ NVlabs StyleGAN2-ADA

def nv_fc(x, w, b, lr_mul, act):
    x = x @ (w * (lr_mul / math.sqrt(w.shape[1]))).t() + b * lr_mul
    return F.leaky_relu(x, 0.2) * SQRT2 if act else x


def nv_mapping(sd, z, c=None, lr_multiplier=0.01):
    def norm(v):
        return v * (v.square().mean(1, keepdim=True) + 1e-8).rsqrt()

    x = norm(z)
    if c is not None:
        x = torch.cat([x, norm(nv_fc(c, sd["mapping.embed.weight"], sd["mapping.embed.bias"], 1.0, False))], 1)
    i = 0
    while f"mapping.fc{i}.weight" in sd:
        x = nv_fc(x, sd[f"mapping.fc{i}.weight"], sd[f"mapping.fc{i}.bias"], lr_multiplier, True)
        i += 1
    return x


def nv_layer(sd, p, x, w, *, up=False, rgb=False):
    """NVlabs SynthesisLayer / ToRGBLayer for one sample, via its generic up-FIR-then-conv path."""
    weight = sd[f"{p}.weight"]
    aw, ab = sd[f"{p}.affine.weight"], sd[f"{p}.affine.bias"]
    styles = aw @ w / math.sqrt(aw.shape[1]) + ab
    if rgb:
        styles = styles / math.sqrt(weight[0].numel())
    wt = weight * styles.view(1, -1, 1, 1)
    if not rgb:
        wt = wt * (wt.square().sum((1, 2, 3), keepdim=True) + 1e-8).rsqrt()
    if up:
        # padding 1 with up=2 and a 4-tap filter: [1 + 2, 1 + 1] before/after, then a valid *true* conv.
        x = upfirdn(x, up=2, pad=(3, 2), gain=4.0)
        x = F.conv2d(x, wt.flip(2, 3))
    else:
        k = wt.shape[-1]
        x = F.conv2d(x, wt, padding=k // 2)
    if rgb:
        return x + sd[f"{p}.bias"].view(1, -1, 1, 1)
    x = x + sd[f"{p}.noise_const"] * sd[f"{p}.noise_strength"]
    return lrelu(x, sd[f"{p}.bias"])


def nv_synthesis(sd, ws):
    res_list = sorted(int(k.split(".")[1][1:]) for k in sd if k.endswith(".conv1.weight") and k.startswith("synthesis.b"))
    outs = []
    for n in range(ws.shape[0]):
        wn = ws[n]
        x = sd["synthesis.b4.const"][None]
        x = nv_layer(sd, "synthesis.b4.conv1", x, wn[0])
        img = nv_layer(sd, "synthesis.b4.torgb", x, wn[1], rgb=True)
        i = 1
        for res in res_list[1:]:
            x = nv_layer(sd, f"synthesis.b{res}.conv0", x, wn[i], up=True)
            x = nv_layer(sd, f"synthesis.b{res}.conv1", x, wn[i + 1])
            img = upfirdn(img, up=2, pad=(2, 1), gain=4.0) + nv_layer(sd, f"synthesis.b{res}.torgb", x, wn[i + 2], rgb=True)
            i += 2
        outs.append(img)
    return torch.cat(outs)
