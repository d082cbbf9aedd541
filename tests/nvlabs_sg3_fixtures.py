"""Build NVlabs StyleGAN3 network pickles in tests, from nada's own StyleGAN3Generator.

The pickle has NVlabs' layout (training/networks_stylegan3.py as its `persistence` module writes it):
every module is `torch_utils.persistence._reconstruct_persistent_obj(meta)` with the module's class
name, embedded source, and its `__dict__`: parameters and buffers under NVlabs' names (the ToRGB's
filters `None`), the attributes NVlabs' constructors store, with NVlabs' types (numpy arrays for sizes,
numpy floats for cutoffs), and `_init_args` / `_init_kwargs`. The Generator's `_init_kwargs` are what
train.py passes. The embedded source writes a marker file and raises, so a loader that ran it is caught.
A one-off check against NVlabs' own code (docs/STYLEGAN3.md) found this layout, attribute for attribute,
in the pickles NVlabs' code writes.
"""

import collections
import pickle

import numpy as np
import torch
from nvlabs_fixtures import SOURCE_TEMPLATE, EasyDict, faithful_reconstruct, fake_nvlabs_modules

from nada_utils.models.stylegan3 import CONFIGS, StyleGAN3Generator


def tiny_init_kwargs(cfg: str = "T", *, img_resolution: int = 16, c_dim: int = 0, dim: int = 16, **overrides) -> dict:
    """The Generator keywords train.py would pass for `--cfg stylegan3-{t,r}`, with tiny sizes (channels / 128 or / 64)."""
    base = dict(CONFIGS[cfg])
    small = dict(base, channel_base=base["channel_base"] // 128, channel_max=base["channel_max"] // 16)
    return {**dict(z_dim=dim, c_dim=c_dim, w_dim=dim, img_resolution=img_resolution, img_channels=3,
                   mapping_kwargs=EasyDict(num_layers=2), magnitude_ema_beta=0.5 ** (32 / 20000), **small), **overrides}


def make_tiny_sg3(cfg: str = "T", *, seed: int = 0, **kwargs) -> StyleGAN3Generator:
    """A tiny StyleGAN3Generator whose every parameter and buffer is non-trivial (biases, magnitude EMAs, w_avg)."""
    init = tiny_init_kwargs(cfg, **kwargs)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        G = StyleGAN3Generator(**{k: dict(v) if isinstance(v, dict) else v for k, v in init.items()})
        randomise(G)
    return G.eval()


@torch.no_grad()
def randomise(G) -> None:
    """Make every parameter and buffer of a StyleGAN3 (ours or NVlabs') non-trivial: fresh biases are 0,
    magnitude EMAs 1, the input affine 0 and w_avg 0, which would hide mistakes in their handling."""
    for name, p in G.named_parameters():
        if name.endswith("bias") or "input.affine" in name:
            p.add_(torch.randn_like(p) * 0.3)
    for name, b in G.named_buffers():
        if name.endswith("magnitude_ema"):
            b.fill_(float(torch.rand([]) * 2 + 0.2))
        if name.endswith("w_avg"):
            b.copy_(torch.randn_like(b) * 0.2)


class PersistentModule:
    """Pickles exactly like an NVlabs persistent_class module instance: class name, source and `__dict__`."""

    def __init__(self, class_name, source, state):
        self.meta = dict(type="class", version=6, module_src=source, class_name=class_name, state=state)

    def __reduce__(self):
        return (faithful_reconstruct, (self.meta,))


def _np_size(size):
    return np.broadcast_to(np.asarray(size[0]), [2]).copy()


# The SynthesisNetwork's own keywords; the others it passes on to every SynthesisLayer.
SYNTHESIS_OWN = ("channel_base", "channel_max", "num_layers", "num_critical", "first_cutoff", "first_stopband",
                 "last_stopband_rel", "margin_size", "output_scale", "num_fp16_res")
GENERATOR_OWN = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs")


def nvlabs_attributes(module, name: str, gen_kwargs: dict) -> tuple[dict, tuple, dict]:
    """(attributes, _init_args, _init_kwargs) that NVlabs' constructor of this module's class stores, for the
    module called `name` in a Generator built with `gen_kwargs`."""
    kind = type(module).__name__
    f64 = np.float64
    synthesis_kwargs = {k: v for k, v in gen_kwargs.items() if k not in GENERATOR_OWN}
    layer_kwargs = {k: v for k, v in synthesis_kwargs.items() if k not in SYNTHESIS_OWN}
    if kind == "FullyConnectedLayer":
        attrs = dict(in_features=module.in_features, out_features=module.out_features, activation=module.activation,
                     weight_gain=f64(module.weight_gain), bias_gain=module.bias_gain)
        kwargs = ({"activation": "lrelu", "lr_multiplier": module.bias_gain} if name.startswith("mapping.fc") else
                  {"weight_init": 0, "bias_init": [1, 0, 0, 0]} if name == "synthesis.input.affine" else
                  {"bias_init": 1} if name.startswith("synthesis.") else {})
        return attrs, (module.in_features, module.out_features), kwargs
    if kind == "MappingNetwork":
        attrs = dict(z_dim=module.z_dim, c_dim=module.c_dim, w_dim=module.w_dim, num_ws=module.num_ws,
                     num_layers=module.num_layers, w_avg_beta=module.w_avg_beta)
        if not module.c_dim:
            attrs["embed"] = None  # NVlabs sets self.embed = None: a plain attribute, no module
        return attrs, (), dict(z_dim=module.z_dim, c_dim=module.c_dim, w_dim=module.w_dim, num_ws=module.num_ws,
                               **gen_kwargs.get("mapping_kwargs", {}))
    if kind == "SynthesisInput":
        attrs = dict(w_dim=module.w_dim, channels=module.channels, size=_np_size(module.size),
                     sampling_rate=f64(module.sampling_rate), bandwidth=f64(module.bandwidth))
        return attrs, (), dict(attrs, size=module.size[0])
    if kind == "SynthesisLayer":
        attrs = dict(w_dim=module.w_dim, is_torgb=module.is_torgb, is_critically_sampled=module.is_critically_sampled,
                     use_fp16=np.bool_(module.use_fp16), in_channels=module.in_channels, out_channels=module.out_channels,
                     in_size=_np_size(module.in_size), out_size=_np_size(module.out_size),
                     in_sampling_rate=module.in_sampling_rate, out_sampling_rate=module.out_sampling_rate,
                     tmp_sampling_rate=module.tmp_sampling_rate, in_cutoff=f64(module.in_cutoff),
                     out_cutoff=f64(module.out_cutoff), in_half_width=f64(module.in_half_width),
                     out_half_width=f64(module.out_half_width), conv_kernel=module.conv_kernel,
                     conv_clamp=module.conv_clamp, magnitude_ema_beta=module.magnitude_ema_beta,
                     up_factor=module.up_factor, up_taps=module.up_taps, down_factor=module.down_factor,
                     down_taps=module.down_taps, down_radial=module.down_radial, padding=list(module.padding))
        init = {k: attrs[k] for k in ("w_dim", "is_torgb", "is_critically_sampled", "use_fp16", "in_channels",
                                      "out_channels", "in_sampling_rate", "out_sampling_rate", "in_cutoff",
                                      "out_cutoff", "in_half_width", "out_half_width", "magnitude_ema_beta")}
        return attrs, (), dict(init, in_size=module.in_size[0], out_size=module.out_size[0], **layer_kwargs)
    if kind == "SynthesisNetwork":
        attrs = dict(w_dim=module.w_dim, num_ws=module.num_ws, img_resolution=module.img_resolution,
                     img_channels=module.img_channels, num_layers=module.num_layers, num_critical=module.num_critical,
                     margin_size=module.margin_size, output_scale=module.output_scale,
                     num_fp16_res=module.num_fp16_res, layer_names=list(module.layer_names))
        return attrs, (), dict(w_dim=module.w_dim, img_resolution=module.img_resolution, img_channels=module.img_channels,
                               **synthesis_kwargs)
    raise TypeError(kind)


def _tree(module, source, settings, gen_kwargs, name=""):
    if isinstance(module, StyleGAN3Generator):
        kind, (attrs, args, kwargs) = "Generator", (dict(z_dim=module.z_dim, c_dim=module.c_dim, w_dim=module.w_dim,
                                                         img_resolution=module.img_resolution,
                                                         img_channels=module.img_channels, num_ws=module.num_ws), (), {})
    else:
        kind, (attrs, args, kwargs) = type(module).__name__, nvlabs_attributes(module, name, gen_kwargs)
    own = settings.get(name, {})
    kind = own.get("class_name", kind)
    attrs = {**attrs, **{k: v for k, v in own.items() if k not in ("class_name", "_init_kwargs")}}
    if "_init_kwargs" in own:
        kwargs = own["_init_kwargs"]
    buffers = collections.OrderedDict((k, None if v is None else v.detach().clone()) for k, v in module._buffers.items())
    state = dict(
        training=False,
        _parameters=collections.OrderedDict((k, torch.nn.Parameter(v.detach().clone(), requires_grad=False))
                                            for k, v in module._parameters.items()),
        _buffers=buffers, _non_persistent_buffers_set=set(),
        _modules=collections.OrderedDict((k, _tree(m, source, settings, gen_kwargs, f"{name}.{k}".lstrip(".")))
                                         for k, m in module._modules.items()),
        _forward_hooks=collections.OrderedDict(), _forward_pre_hooks=collections.OrderedDict(),
        _init_args=args, _init_kwargs=kwargs, **attrs)
    if kwargs is None:
        del state["_init_kwargs"]
    return PersistentModule(kind, source, state)


def sg3_pickle_bytes(G: StyleGAN3Generator, init_kwargs: dict, marker_path, *, settings: dict | None = None) -> bytes:
    """An NVlabs StyleGAN3 network pickle {'G', 'D', 'G_ema', ...} holding G, built with `init_kwargs`.

    `settings`: {module name ("" for the Generator, "synthesis.L3_36_32", ...): attributes overriding the recorded
    ones; "class_name" and "_init_kwargs" (None drops it) included}, to build pickles nada must refuse."""
    src = SOURCE_TEMPLATE.format(marker=str(marker_path))
    settings = dict(settings or {})
    settings[""] = {"_init_kwargs": EasyDict(init_kwargs), **settings.get("", {})}
    g_ema = _tree(G, src, settings, init_kwargs)
    data = {"G": g_ema, "D": PersistentModule("Discriminator", src, {}), "G_ema": g_ema, "augment_pipe": None,
            "training_set_kwargs": EasyDict(path="x.zip", resolution=G.img_resolution)}
    with fake_nvlabs_modules():
        return pickle.dumps(data, protocol=4)


def write_sg3_pickle(tmp_path, cfg: str = "T", *, settings=None, seed: int = 0, **kwargs):
    """(path of a tiny StyleGAN3 pickle, the generator it holds, the marker its embedded code would write)."""
    init = tiny_init_kwargs(cfg, **kwargs)
    G = make_tiny_sg3(cfg, seed=seed, **kwargs)
    marker = tmp_path / "pwned.txt"
    path = tmp_path / f"sg3-{cfg.lower()}.pkl"
    path.write_bytes(sg3_pickle_bytes(G, init, marker, settings=settings))
    return path, G, marker
