"""StyleGAN3 generators in and out: NVlabs `stylegan3-*.pkl` files and nada's own `.pt`.

A pickle is read through `safe_pickle` (its embedded source never runs). Its `G_ema` records the
constructor arguments it was built with (`_init_kwargs`, kept by NVlabs' `persistence`); nada builds
its own `StyleGAN3Generator` from them, checks every attribute the pickle recorded on every module
(sizes, sampling rates, cutoffs, paddings, gains, ...) against the rebuilt one, and loads the state
dict strictly, so a generator nada cannot reproduce exactly is refused, never rendered wrong.

StyleGAN3's filters and sampling rates cannot be read off tensor shapes, so nada's `.pt` carries the
architecture beside plain tensors: `{"G_ema": state dict, "nada": {"format_version", "model", "arch"}}`,
readable with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import inspect

import numpy as np
import torch

from nada_utils.errors import NadaError
from nada_utils.models.state_loading import load_state_strictly
from nada_utils.models.stylegan3 import StyleGAN3Generator, synthesis_layout
from nada_utils.weights.formats import nvlabs_g_ema, nvlabs_module_state, nvlabs_modules
from nada_utils.weights.safe_pickle import PersistentObject

FORMAT_VERSION = 1
MODEL = "stylegan3"

# NVlabs' Generator arguments, in its positional order, then the SynthesisNetwork/SynthesisLayer keywords
# and the MappingNetwork's (mapping_kwargs). Every one is modelled; any other is refused.
GENERATOR_ARGS = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels")
SYNTHESIS_ARGS = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                  "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res", "conv_kernel", "filter_size",
                  "lrelu_upsampling", "use_radial_filters", "conv_clamp", "magnitude_ema_beta")
MAPPING_ARGS = ("num_layers", "lr_multiplier", "w_avg_beta")
# Bounds far beyond any published generator, checked before anything is built: a damaged file's settings
# must not make nada allocate without limit.
LIMITS = dict(z_dim=(1, 16384), c_dim=(0, 100000), w_dim=(1, 16384), img_resolution=(4, 8192), channel_max=(1, 16384),
              num_layers=(1, 64), num_critical=(0, 64), margin_size=(0, 1024), conv_kernel=(1, 15), filter_size=(1, 64),
              lrelu_upsampling=(1, 16))

# The attributes NVlabs' constructors store on each module, compared with the rebuilt module's.
RECORDED = {
    "Generator": ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "num_ws"),
    "MappingNetwork": ("z_dim", "c_dim", "w_dim", "num_ws", "num_layers"),
    "FullyConnectedLayer": ("in_features", "out_features", "activation", "weight_gain", "bias_gain"),
    "SynthesisNetwork": ("w_dim", "num_ws", "img_resolution", "img_channels", "num_layers", "num_critical",
                         "margin_size", "output_scale", "layer_names"),
    "SynthesisInput": ("w_dim", "channels", "size", "sampling_rate", "bandwidth"),
    "SynthesisLayer": ("w_dim", "is_torgb", "is_critically_sampled", "in_channels", "out_channels", "in_size",
                       "out_size", "in_sampling_rate", "out_sampling_rate", "tmp_sampling_rate", "in_cutoff",
                       "out_cutoff", "in_half_width", "out_half_width", "conv_kernel", "conv_clamp", "up_factor",
                       "up_taps", "down_factor", "down_taps", "down_radial", "padding"),
}


def _refuse(path, what: str) -> NadaError:
    return NadaError(f"{path}: {what}; nada models NVlabs' StyleGAN3 generator (configs T and R) exactly and refuses "
                     f"other settings rather than render them wrongly (use a generator made by NVlabs' stylegan3 code)")


def _plain(value):
    """numpy scalars and EasyDict records as plain Python values (JSON-safe), recursively."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_arch(arch, source) -> dict:
    """A copy of `arch` (StyleGAN3Generator keywords) after refusing unknown or non-RGB settings."""
    if not isinstance(arch, dict):
        raise NadaError(f"{source}: the StyleGAN3 architecture is a {type(arch).__name__}, not a dict of settings")
    arch = _plain(arch)
    unknown = sorted(set(arch) - set(GENERATOR_ARGS) - set(SYNTHESIS_ARGS) - {"mapping_kwargs"})
    if unknown:
        raise _refuse(source, f"it was built with setting(s) {', '.join(unknown)} that nada does not know")
    mapping = arch.get("mapping_kwargs") or {}
    if not isinstance(mapping, dict) or set(mapping) - set(MAPPING_ARGS):
        extra = sorted(set(mapping) - set(MAPPING_ARGS)) if isinstance(mapping, dict) else [repr(mapping)]
        raise _refuse(source, f"its mapping network was built with {', '.join(extra)}")
    if "img_resolution" not in arch:
        raise NadaError(f"{source}: the StyleGAN3 architecture does not give img_resolution; the file is incomplete")
    for name, value in [*arch.items(), *(("num_layers", v) for k, v in mapping.items() if k == "num_layers")]:
        lo, hi = LIMITS.get(name, (None, None))
        if lo is not None and not (isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi):
            raise NadaError(f"{source}: StyleGAN3 setting {name}={value!r} is not an integer in [{lo}, {hi}]; "
                            f"the file is damaged or not a StyleGAN3 generator")
    channels = arch.get("img_channels", 3)
    if channels != 3:
        raise _refuse(source, f"it makes {channels}-channel images (img_channels={channels}); only RGB generators are supported")
    return arch


def arch_from_pickle(g: PersistentObject, path) -> dict:
    """StyleGAN3Generator keywords from the constructor arguments an NVlabs `G_ema` recorded."""
    if g.class_name != "Generator":
        raise _refuse(path, f"G_ema is a {g.class_name}, not NVlabs' StyleGAN3 Generator")
    kwargs = g.state.get("_init_kwargs")
    if not isinstance(kwargs, dict):
        raise NadaError(f"{path}: its G_ema records no constructor arguments (_init_kwargs), which StyleGAN3's filters "
                        f"and sampling rates need; it was not written by NVlabs' persistence module")
    args = g.state.get("_init_args") or ()
    arch = {**dict(zip(GENERATOR_ARGS, args if isinstance(args, (list, tuple)) else ())), **kwargs}
    for name in GENERATOR_ARGS:  # normally in the kwargs; else what the Generator stored
        if name not in arch and name in g.state:
            arch[name] = g.state[name]
    return check_arch(arch, path)


def layer_names(arch: dict) -> list[str]:
    """The synthesis layer names `L{idx}_{size}_{channels}` that `StyleGAN3Generator(**arch)` would build."""
    defaults = {k: v.default for k, v in inspect.signature(StyleGAN3Generator).parameters.items()
                if v.default is not inspect.Parameter.empty}
    settings = {**defaults, **arch}
    lay = synthesis_layout(**{k: settings[k] for k in inspect.signature(synthesis_layout).parameters})
    return [f"L{i}_{int(s)}_{int(c)}" for i, (s, c) in enumerate(zip(lay["sizes"], lay["channels"]))]


def _same(recorded, ours) -> bool:
    recorded, ours = _plain(recorded), _plain(ours)
    if isinstance(ours, (str, bool)) or ours is None or isinstance(recorded, (str, bool)) or recorded is None:
        return recorded == ours
    try:
        a, b = np.asarray(recorded, dtype=np.float64), np.asarray(ours, dtype=np.float64)
    except (TypeError, ValueError):
        return recorded == ours
    return a.shape == b.shape and bool(np.allclose(a, b, rtol=1e-9, atol=1e-12))


def check_recorded_attributes(g: PersistentObject, G: StyleGAN3Generator, path) -> None:
    """Refuse unless every module of the pickle is the rebuilt one's, with the same recorded attributes."""
    ours = dict(G.named_modules())
    for name, obj in nvlabs_modules(g):
        module = ours.get(name)
        kind = "Generator" if module is G else type(module).__name__
        if module is None or obj.class_name != kind:
            raise _refuse(path, f"its module {name or 'G_ema'} is a {obj.class_name} where NVlabs' StyleGAN3 has "
                                f"{kind if module is not None else 'none'}")
        for attr in RECORDED.get(kind, ()):
            if attr in obj.state and not _same(obj.state[attr], getattr(module, attr)):
                raise _refuse(path, f"{name or 'G_ema'}.{attr} is {_plain(obj.state[attr])!r} where the recorded "
                                    f"constructor arguments give {_plain(getattr(module, attr))!r}")


def stylegan3_from_state_dict(sd: dict[str, torch.Tensor], arch: dict, *, source: str) -> StyleGAN3Generator:
    """Build a StyleGAN3Generator from `arch` and load `sd` into it strictly (every key, every shape)."""
    arch = check_arch(arch, source)
    try:
        # The layer names (sizes and channels) first, from numbers alone: a mismatch is refused before it is built.
        names = layer_names(arch)
        G = None if set(names) != {k.split(".")[1] for k in sd if k.startswith("synthesis.L")} else StyleGAN3Generator(**arch)
    except (TypeError, ValueError, OverflowError) as e:
        raise NadaError(f"{source}: unsupported StyleGAN3 architecture ({e})") from None
    if G is None:
        raise NadaError(f"{source}: its layers do not match the ones its architecture gives ({', '.join(names[:3])}, ...); "
                        f"the file is damaged or its architecture was edited")
    load_state_strictly(G, {k: v.detach().to(torch.float32) for k, v in sd.items()}, source=source,
                        layout="the StyleGAN3 layout its architecture gives")
    G.w_avg_source = "checkpoint"  # mapping.w_avg is part of the state dict
    return G.eval().requires_grad_(False)


def stylegan3_from_pickle(data, path) -> StyleGAN3Generator:
    """The StyleGAN3 `G_ema` of an unpickled (restricted) NVlabs network pickle, as a frozen StyleGAN3Generator."""
    g = nvlabs_g_ema(data, path)
    G = stylegan3_from_state_dict(nvlabs_module_state(g), arch_from_pickle(g, path), source=str(path))
    check_recorded_attributes(g, G, path)
    return G


def is_stylegan3_checkpoint(obj) -> bool:
    """Whether the content of a `.pt` is a StyleGAN3 generator: nada's export, a nada training checkpoint of
    one, or a bare NVlabs StyleGAN3 state dict."""
    if not isinstance(obj, dict):
        return False
    meta = obj.get("nada")
    if isinstance(meta, dict) and meta.get("model") == MODEL:
        return True
    sd = obj.get("G_train", obj.get("G_ema", obj))
    return isinstance(sd, dict) and "synthesis.input.freqs" in sd


def stylegan3_from_checkpoint(obj: dict, path) -> StyleGAN3Generator:
    """The generator of a `.pt` for which `is_stylegan3_checkpoint` holds."""
    meta = obj.get("nada") if isinstance(obj.get("nada"), dict) else {}
    version = meta.get("format_version", FORMAT_VERSION)
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise NadaError(f"{path} was written by a newer nada (StyleGAN3 format {version}, this one reads up to "
                        f"{FORMAT_VERSION}); upgrade nada")
    if "G_train" in obj:  # a nada training checkpoint: the adapted generator, arch beside it
        sd, arch = obj["G_train"], obj.get("arch")
    elif "G_ema" in obj:
        sd, arch = obj["G_ema"], meta.get("arch")
    else:
        sd, arch = obj, None
    if arch is None:
        raise NadaError(f"{path} holds StyleGAN3 weights without their architecture, which tensor shapes cannot "
                        f"give (filters, sampling rates); load the NVlabs .pkl, or a .pt written by nada's save_generator")
    if not isinstance(sd, dict) or not all(isinstance(v, torch.Tensor) for v in sd.values()):
        raise NadaError(f"{path} is not a StyleGAN3 generator checkpoint (its weights are not a state dict)")
    return stylegan3_from_state_dict(sd, arch, source=str(path))


def stylegan3_checkpoint(G: StyleGAN3Generator) -> dict:
    """nada's `.pt` content for G: plain tensors (NVlabs' names) and the architecture, for weights_only loading."""
    return {
        "G_ema": {k: v.detach().cpu().clone() for k, v in G.state_dict().items()},
        "nada": {"format_version": FORMAT_VERSION, "model": MODEL, "arch": G.arch},
    }
