"""Conversions of NVlabs generator checkpoints into the rosinality layout our Generator uses.

Two NVlabs formats are read, both through `safe_pickle` so that no embedded code runs:
- StyleGAN2-ADA PyTorch pickles: a dict whose `G_ema` is a tree of persistent objects; its
  parameters are named like `mapping.fc0.weight` and `synthesis.b8.conv0.affine.bias`.
  (StyleGAN3 pickles share that container; `is_stylegan3_pickle` tells them apart and
  `models.stylegan3_io` loads them into their own module, with no conversion.)
- The original TensorFlow StyleGAN2 pickles: a tuple `(G, D, Gs)` of `dnnlib.tflib.Network` objects
  whose state holds numpy arrays named like `G_synthesis/8x8/Conv0_up/weight`.

The maths is the same in all three codebases; what differs is naming, shapes, where the +1 of the
modulation bias lives, and (TF only) a spatially flipped kernel in upsampling convolutions.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from nada_utils.errors import NadaError
from nada_utils.weights.safe_pickle import Opaque, PersistentObject


def _t(x) -> torch.Tensor:
    """A float32 tensor from a tensor or numpy array."""
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.ascontiguousarray(x))
    return x.detach().to(torch.float32).clone()


# ---------------------------------------------------------------- NVlabs StyleGAN2-ADA (PyTorch)

def nvlabs_module_state(obj: PersistentObject, prefix: str = "") -> dict[str, torch.Tensor]:
    """Flatten an unpickled persistent module tree into a state dict, as `module.state_dict()` would."""
    state = obj.state
    out: dict[str, torch.Tensor] = {}
    def entries(group: str) -> dict:  # a damaged pickle can put anything here; only a dict holds entries
        value = state.get(group)
        return value if isinstance(value, dict) else {}

    for group in ("_parameters", "_buffers"):
        for name, value in entries(group).items():
            if isinstance(value, torch.Tensor):
                out[f"{prefix}{name}"] = value.detach()
    for name, child in entries("_modules").items():
        if isinstance(child, PersistentObject):
            out.update(nvlabs_module_state(child, f"{prefix}{name}."))
    return out


def nvlabs_g_ema(data, path) -> PersistentObject:
    """The `G_ema` object of an unpickled NVlabs network pickle (StyleGAN2-ADA or StyleGAN3 alike)."""
    if not isinstance(data, dict) or "G_ema" not in data:
        raise NadaError(f"{path} is not a StyleGAN2-ADA network pickle (no G_ema inside); "
                        f"use a generator pickle from NVlabs' stylegan2-ada-pytorch or a rosinality .pt")
    g = data["G_ema"]
    if not isinstance(g, PersistentObject):
        raise NadaError(f"{path}: G_ema has an unexpected type ({type(g).__name__}); it is not a StyleGAN2-ADA pickle")
    return g


def is_stylegan3_pickle(data) -> bool:
    """Whether an unpickled NVlabs network pickle holds a StyleGAN3 `G_ema` (Fourier-feature input layer)."""
    g = data.get("G_ema") if isinstance(data, dict) else None
    return isinstance(g, PersistentObject) and "synthesis.input.freqs" in nvlabs_module_state(g)


def nvlabs_pickle_generator(data, path) -> tuple[dict[str, torch.Tensor], float]:
    """The `G_ema` state dict of an unpickled StyleGAN2-ADA network pickle, and its mapping lr multiplier.

    A generator built with settings our Generator cannot reproduce exactly is refused (`check_nvlabs_settings`)
    rather than rendered wrongly. StyleGAN3 pickles go to `models.stylegan3_io` instead."""
    g = nvlabs_g_ema(data, path)
    sd = nvlabs_module_state(g)
    return sd, check_nvlabs_settings(g, sd, path)


# upfirdn2d.setup_filter([1, 3, 3, 1]): the outer product, normalised to sum 1. Every published model uses it.
DEFAULT_RESAMPLE_FILTER = torch.tensor([1.0, 3.0, 3.0, 1.0]).outer(torch.tensor([1.0, 3.0, 3.0, 1.0])) / 64


def nvlabs_modules(obj: PersistentObject, prefix: str = ""):
    """(dotted name, object) for a persistent module and all its persistent children."""
    yield prefix.rstrip("."), obj
    children = obj.state.get("_modules")
    for name, child in (children.items() if isinstance(children, dict) else ()):
        if isinstance(child, PersistentObject):
            yield from nvlabs_modules(child, f"{prefix}{name}.")


def _number(value) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def check_nvlabs_settings(g: PersistentObject, sd: dict[str, torch.Tensor], path) -> float:
    """Refuse a StyleGAN2-ADA generator whose settings nada's Generator does not model; return the
    mapping network's lr multiplier (any value is modelled exactly: our `lr_mlp`).

    Read from the objects' own attributes (what NVlabs' constructors store), where the pickle has them:
    the number of image channels, the block architecture, the activations, the noise inputs and
    every resampling filter. Without them the defaults are assumed, as NVlabs' code does."""
    def refuse(what: str) -> NadaError:
        return NadaError(f"{path}: {what}; nada models NVlabs' default StyleGAN2 generator exactly and refuses "
                         f"other settings rather than render them wrongly (convert it with NVlabs' own code, or "
                         f"use a generator trained with the default settings)")

    channels = g.state.get("img_channels", 3)
    if channels != 3:
        raise refuse(f"it makes {channels}-channel images (img_channels={channels}); only RGB generators are supported")
    gains = set()
    for name, obj in nvlabs_modules(g):
        state = obj.state
        if "architecture" in state and state["architecture"] != "skip":
            raise refuse(f"{name} uses the {state['architecture']!r} architecture; only 'skip' is supported")
        expected = "lrelu" if obj.class_name == "SynthesisLayer" or name.startswith("mapping.fc") else "linear"
        if "activation" in state and state["activation"] != expected:
            raise refuse(f"{name} uses the activation {state['activation']!r} where nada's generator has {expected!r}")
        if obj.class_name == "SynthesisLayer" and state.get("use_noise", True) is not True:
            raise refuse(f"{name} has no noise input (use_noise=False)")
        if name.startswith("mapping.fc") and (gain := _number(state.get("bias_gain"))) is not None:
            gains.add(gain)
    for key, value in sd.items():
        if key.endswith("resample_filter") and (value.shape != DEFAULT_RESAMPLE_FILTER.shape or
                                                not torch.allclose(value.float(), DEFAULT_RESAMPLE_FILTER, atol=1e-6)):
            raise refuse(f"{key} is not the default [1,3,3,1] resampling filter")
    if len(gains) > 1:
        raise refuse(f"its mapping layers have different lr multipliers {sorted(gains)}")
    if not gains:  # attributes absent: the MappingNetwork's constructor argument, else NVlabs' default
        kwargs = next((o.state.get("_init_kwargs") for n, o in nvlabs_modules(g) if n == "mapping"), None) or {}
        gains.add(_number(kwargs.get("lr_multiplier", 0.01)) if isinstance(kwargs, dict) else 0.01)
    gain = gains.pop()
    if gain is None or not (gain > 0 and np.isfinite(gain)):
        raise refuse(f"its mapping lr multiplier ({gain}) is not a positive number")
    return gain


def nvlabs_to_rosinality(sd: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Rename an NVlabs `G_ema` state dict to rosinality keys. Returns (g_ema state dict, w_avg or None)."""
    out: dict[str, torch.Tensor] = {}
    n_mlp = 0
    while f"mapping.fc{n_mlp}.weight" in sd:
        out[f"style.{n_mlp + 1}.weight"] = _t(sd[f"mapping.fc{n_mlp}.weight"])
        out[f"style.{n_mlp + 1}.bias"] = _t(sd[f"mapping.fc{n_mlp}.bias"])
        n_mlp += 1
    if "mapping.embed.weight" in sd:
        out["embed.weight"] = _t(sd["mapping.embed.weight"])
        out["embed.bias"] = _t(sd["mapping.embed.bias"])
    block_res = sorted(int(m.group(1)) for k in sd if (m := re.fullmatch(r"synthesis\.b(\d+)\.conv1\.weight", k)))
    if n_mlp == 0 or not block_res or block_res[0] != 4:
        raise NadaError("not a StyleGAN2-ADA generator: expected keys like mapping.fc0.weight and synthesis.b4.conv1.weight")

    def layer(src: str, dst: str, noise_idx: int | None):
        out[f"{dst}.conv.weight"] = _t(sd[f"{src}.weight"]).unsqueeze(0)
        out[f"{dst}.conv.modulation.weight"] = _t(sd[f"{src}.affine.weight"])
        out[f"{dst}.conv.modulation.bias"] = _t(sd[f"{src}.affine.bias"])
        if noise_idx is None:  # toRGB
            out[f"{dst}.bias"] = _t(sd[f"{src}.bias"]).view(1, 3, 1, 1)
        else:
            out[f"{dst}.noise.weight"] = _t(sd[f"{src}.noise_strength"]).reshape(1)
            out[f"{dst}.activate.bias"] = _t(sd[f"{src}.bias"])
            out[f"noises.noise_{noise_idx}"] = _t(sd[f"{src}.noise_const"]).reshape(1, 1, *sd[f"{src}.noise_const"].shape[-2:])

    rgb = sd.get("synthesis.b4.torgb.weight")
    if rgb is not None and rgb.shape[0] != 3:
        raise NadaError(f"this StyleGAN2-ADA generator makes {rgb.shape[0]}-channel images; only RGB generators "
                        f"(img_channels=3) are supported")
    try:
        out["input.input"] = _t(sd["synthesis.b4.const"]).unsqueeze(0)
        layer("synthesis.b4.conv1", "conv1", 0)
        layer("synthesis.b4.torgb", "to_rgb1", None)
        for b, res in enumerate(block_res[1:]):
            # NVlabs runs the upsampling conv as conv_transpose2d on the unflipped kernel, as rosinality does.
            layer(f"synthesis.b{res}.conv0", f"convs.{2 * b}", 2 * b + 1)
            layer(f"synthesis.b{res}.conv1", f"convs.{2 * b + 1}", 2 * b + 2)
            layer(f"synthesis.b{res}.torgb", f"to_rgbs.{b}", None)
    except KeyError as e:
        raise NadaError(f"StyleGAN2-ADA generator is missing {e.args[0]}; only the default 'skip' architecture is supported") from None
    w_avg = _t(sd["mapping.w_avg"]) if "mapping.w_avg" in sd else None
    return out, w_avg


# ---------------------------------------------------------------- NVlabs StyleGAN2 (TensorFlow)

def _tf_network_vars(net, prefix: str = "") -> dict[str, np.ndarray]:
    """All variables of a pickled dnnlib.tflib Network and its components, as {name: array}."""
    state = net.state if isinstance(net, Opaque) else None
    if not isinstance(state, dict) or "variables" not in state:
        raise NadaError("not a TensorFlow StyleGAN2 network pickle (no dnnlib Network state found)")
    out = {prefix + name: np.asarray(value) for name, value in state["variables"]}
    for comp_name, comp in (state.get("components") or {}).items():
        out.update(_tf_network_vars(comp, f"{prefix}{comp_name}/"))
    return out


def tf_pickle_generator(data, path) -> dict[str, np.ndarray]:
    """The variables of `Gs` (the averaged generator) of an unpickled TF StyleGAN2 pickle `(G, D, Gs)`."""
    if not isinstance(data, tuple) or len(data) != 3:
        raise NadaError(f"{path} is not a TensorFlow StyleGAN2 pickle (expected the tuple G, D, Gs)")
    return _tf_network_vars(data[2])


def tf_to_rosinality(tf: dict[str, np.ndarray]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
    """Rename TF `Gs` variables to rosinality keys. Returns (g_ema state dict, w_avg or None)."""
    out: dict[str, torch.Tensor] = {}
    n_mlp = 0
    while f"mapping/Dense{n_mlp}/weight" in tf:
        out[f"style.{n_mlp + 1}.weight"] = _t(tf[f"mapping/Dense{n_mlp}/weight"]).t()  # TF stores [in, out]
        out[f"style.{n_mlp + 1}.bias"] = _t(tf[f"mapping/Dense{n_mlp}/bias"])
        n_mlp += 1
    block_res = sorted(int(m.group(1)) for k in tf if (m := re.fullmatch(r"synthesis/(\d+)x\1/Conv1/weight", k)))
    if n_mlp == 0 or "synthesis/4x4/Conv/weight" not in tf:
        raise NadaError("not a TensorFlow StyleGAN2 generator: expected variables like mapping/Dense0/weight and synthesis/4x4/Conv/weight")

    def layer(src: str, dst: str, *, flip: bool = False, rgb: bool = False):
        w = _t(tf[f"{src}/weight"]).permute(3, 2, 0, 1)  # [kh, kw, in, out] -> [out, in, kh, kw]
        if flip:
            # TF's upsample_conv_2d flips the kernel before its transposed convolution; ours does not.
            w = torch.flip(w, [2, 3])
        out[f"{dst}.conv.weight"] = w.unsqueeze(0).contiguous()
        out[f"{dst}.conv.modulation.weight"] = _t(tf[f"{src}/mod_weight"]).t()
        # TF adds the modulation's initial 1 at run time; rosinality keeps it in the bias.
        out[f"{dst}.conv.modulation.bias"] = _t(tf[f"{src}/mod_bias"]) + 1
        if rgb:
            out[f"{dst}.bias"] = _t(tf[f"{src}/bias"]).view(1, 3, 1, 1)
        else:
            out[f"{dst}.noise.weight"] = _t(tf[f"{src}/noise_strength"]).reshape(1)
            out[f"{dst}.activate.bias"] = _t(tf[f"{src}/bias"])

    try:
        out["input.input"] = _t(tf["synthesis/4x4/Const/const"])
        layer("synthesis/4x4/Conv", "conv1")
        layer("synthesis/4x4/ToRGB", "to_rgb1", rgb=True)
        for b, res in enumerate(r for r in block_res if r > 4):
            layer(f"synthesis/{res}x{res}/Conv0_up", f"convs.{2 * b}", flip=True)
            layer(f"synthesis/{res}x{res}/Conv1", f"convs.{2 * b + 1}")
            layer(f"synthesis/{res}x{res}/ToRGB", f"to_rgbs.{b}", rgb=True)
        i = 0
        while f"synthesis/noise{i}" in tf:
            out[f"noises.noise_{i}"] = _t(tf[f"synthesis/noise{i}"])
            i += 1
    except KeyError as e:
        raise NadaError(f"TensorFlow StyleGAN2 generator is missing variable {e.args[0]}; only config-f generators are supported") from None
    w_avg = _t(tf["dlatent_avg"]) if "dlatent_avg" in tf else None
    return out, w_avg
