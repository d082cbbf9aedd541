"""Build NVlabs-format pickles in tests, from rosinality state dicts.

StyleGAN2-ADA pickles are made the way NVlabs' `persistence` module makes them: every network object
reduces to `torch_utils.persistence._reconstruct_persistent_obj(meta)`, where `meta` carries the
class's module source and its `__dict__`. TF pickles hold `dnnlib.tflib.network.Network` objects
whose state lists numpy variables. Each embedded source here writes a marker file and raises, so a
loader that ran it would be caught.
"""

import collections
import contextlib
import pickle
import sys
import types

import numpy as np
import torch

SOURCE_TEMPLATE = "open({marker!r}, 'w').write('code from the pickle ran')\nraise SystemExit('pickle code executed')\n"


def faithful_reconstruct(meta):
    """What NVlabs' real `_reconstruct_persistent_obj` does: exec the embedded module source."""
    module = types.ModuleType("_imported_module_test")
    exec(meta["module_src"], module.__dict__)  # noqa: S102 - the point of the test
    return module.__dict__[meta["class_name"]]


class EasyDict(dict):
    pass


@contextlib.contextmanager
def fake_nvlabs_modules():
    """Register `torch_utils.persistence` and `dnnlib` stand-ins only while pickling/plain-loading."""
    tu, pers, dn, dnu, tfl, tfn = (types.ModuleType(n) for n in
                                   ("torch_utils", "torch_utils.persistence", "dnnlib", "dnnlib.util", "dnnlib.tflib", "dnnlib.tflib.network"))
    faithful_reconstruct.__module__, faithful_reconstruct.__qualname__ = "torch_utils.persistence", "_reconstruct_persistent_obj"
    pers._reconstruct_persistent_obj = faithful_reconstruct
    EasyDict.__module__ = "dnnlib.util"
    dnu.EasyDict = EasyDict
    Network.__module__ = "dnnlib.tflib.network"
    tfn.Network = Network
    mods = {"torch_utils": tu, "torch_utils.persistence": pers, "dnnlib": dn, "dnnlib.util": dnu,
            "dnnlib.tflib": tfl, "dnnlib.tflib.network": tfn}
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


class Persistent:
    """An object that pickles exactly like an NVlabs persistent_class instance."""

    def __init__(self, class_name, source, params=None, buffers=None, modules=None, **attrs):
        self.meta = dict(type="class", version=6, module_src=source, class_name=class_name, state=dict(
            training=False,
            _parameters=collections.OrderedDict((k, torch.nn.Parameter(v.clone(), requires_grad=False)) for k, v in (params or {}).items()),
            _buffers=collections.OrderedDict((buffers or {}).items()),
            _non_persistent_buffers_set=set(),
            _modules=collections.OrderedDict((modules or {}).items()),
            _forward_hooks=collections.OrderedDict(),
            _init_kwargs=EasyDict(attrs), **attrs))

    def __reduce__(self):
        return (faithful_reconstruct, (self.meta,))


def rosinality_to_nvlabs(sd, w_avg):
    """Inverse of the layout conversion, written from the NVlabs naming (used to build fixtures)."""
    nv = {}
    i = 1
    while f"style.{i}.weight" in sd:
        nv[f"mapping.fc{i - 1}.weight"], nv[f"mapping.fc{i - 1}.bias"] = sd[f"style.{i}.weight"], sd[f"style.{i}.bias"]
        i += 1
    if "embed.weight" in sd:
        nv["mapping.embed.weight"], nv["mapping.embed.bias"] = sd["embed.weight"], sd["embed.bias"]
    nv["mapping.w_avg"] = w_avg
    nv["synthesis.b4.const"] = sd["input.input"][0]

    def layer(src, dst, noise_i):
        nv[f"{dst}.weight"] = sd[f"{src}.conv.weight"][0]
        nv[f"{dst}.affine.weight"], nv[f"{dst}.affine.bias"] = sd[f"{src}.conv.modulation.weight"], sd[f"{src}.conv.modulation.bias"]
        if noise_i is None:
            nv[f"{dst}.bias"] = sd[f"{src}.bias"].reshape(3)
        else:
            nv[f"{dst}.bias"], nv[f"{dst}.noise_strength"] = sd[f"{src}.activate.bias"], sd[f"{src}.noise.weight"].reshape(())
            nv[f"{dst}.noise_const"] = sd[f"noises.noise_{noise_i}"][0, 0]
            f = torch.tensor([1.0, 3.0, 3.0, 1.0])
            nv[f"{dst}.resample_filter"] = f.outer(f) / f.sum() ** 2  # upfirdn2d.setup_filter([1, 3, 3, 1])

    layer("conv1", "synthesis.b4.conv1", 0)
    layer("to_rgb1", "synthesis.b4.torgb", None)
    b = 0
    while f"convs.{2 * b}.conv.weight" in sd:
        res = 2 ** (b + 3)
        layer(f"convs.{2 * b}", f"synthesis.b{res}.conv0", 2 * b + 1)
        layer(f"convs.{2 * b + 1}", f"synthesis.b{res}.conv1", 2 * b + 2)
        layer(f"to_rgbs.{b}", f"synthesis.b{res}.torgb", None)
        b += 1
    return nv


def nvlabs_attributes(name, class_name, params, lr_multiplier=0.01):
    """The attributes NVlabs' constructors store on each module (training/networks.py), defaults as published."""
    if class_name == "FullyConnectedLayer":
        mapping = name.startswith("mapping.fc")
        gain = lr_multiplier if mapping else 1.0
        return dict(activation="lrelu" if mapping else "linear", bias_gain=gain,
                    weight_gain=gain / float(params["weight"].shape[1]) ** 0.5)
    if class_name == "SynthesisLayer":
        return dict(activation="lrelu", use_noise=True, conv_clamp=None, up=2 if name.endswith("conv0") else 1)
    if class_name == "SynthesisBlock":
        return dict(architecture="skip", img_channels=3)
    if class_name == "MappingNetwork":
        return dict(lr_multiplier=lr_multiplier)  # a constructor argument: pickled in _init_kwargs
    return {}


def nvlabs_pickle_bytes(nv_sd, marker_path, *, c_dim=0, extra=None, settings=None):
    """A StyleGAN2-ADA network pickle {'G', 'D', 'G_ema', ...} holding the NVlabs state dict `nv_sd`.

    `settings`: {module name ("" for the Generator, "mapping.fc0", ...): attributes} overriding NVlabs'
    defaults, to build generators with settings nada must refuse or model."""
    src = SOURCE_TEMPLATE.format(marker=str(marker_path))
    settings = settings or {}

    def tree(prefix, class_name):
        params, buffers, children = {}, {}, {}
        for k, v in nv_sd.items():
            if not k.startswith(prefix):
                continue
            rest = k[len(prefix):]
            if "." in rest:
                children.setdefault(rest.split(".")[0], None)
            elif rest in ("w_avg", "noise_const", "resample_filter"):
                buffers[rest] = v
            else:
                params[rest] = v
        kinds = {"mapping": "MappingNetwork", "synthesis": "SynthesisNetwork", "affine": "FullyConnectedLayer",
                 "embed": "FullyConnectedLayer", "torgb": "ToRGBLayer"}
        mods = {}
        for name in children:
            kind = kinds.get(name, "SynthesisBlock" if name.startswith("b") else
                             "FullyConnectedLayer" if name.startswith("fc") else "SynthesisLayer")
            mods[name] = tree(f"{prefix}{name}.", kind)
        name = prefix.rstrip(".")
        attrs = {**nvlabs_attributes(name, class_name, params), **settings.get(name, {})}
        return Persistent(class_name, src, params, buffers, mods, **attrs)

    g_ema = tree("", "Generator")
    g_ema.meta["state"].update({"img_channels": 3, **settings.get("", {})})
    g_ema.meta["state"].update(z_dim=nv_sd["mapping.fc0.weight"].shape[1] - (nv_sd["mapping.fc0.weight"].shape[0] if c_dim else 0), c_dim=c_dim)
    data = {"G": g_ema, "D": Persistent("Discriminator", src), "G_ema": g_ema, "augment_pipe": None,
            "training_set_kwargs": EasyDict(path="x.zip", resolution=32), **(extra or {})}
    with fake_nvlabs_modules():
        return pickle.dumps(data, protocol=4)


class Network:
    """Pickles like dnnlib.tflib.network.Network: class reference plus a state dict."""

    def __init__(self, state):
        self._state = state

    def __getstate__(self):
        return self._state

    def __setstate__(self, state):
        exec(state["build_module_src"], {})  # noqa: S102 - what the real class does on unpickling
        self._state = state


def rosinality_to_tf(sd, w_avg):
    """TF `Gs` variables for a rosinality state dict: [kh,kw,in,out] kernels, flipped upsampling kernels, mod_bias - 1."""
    def np_(t):
        return t.detach().numpy().copy()

    mapping, synth = [], []
    i = 1
    while f"style.{i}.weight" in sd:
        mapping += [(f"Dense{i - 1}/weight", np_(sd[f"style.{i}.weight"].t())), (f"Dense{i - 1}/bias", np_(sd[f"style.{i}.bias"]))]
        i += 1

    def layer(src, dst, *, up=False, rgb=False):
        w = sd[f"{src}.conv.weight"][0]
        if up:
            w = torch.flip(w, [2, 3])
        synth.extend([(f"{dst}/weight", np_(w.permute(2, 3, 1, 0))), (f"{dst}/mod_weight", np_(sd[f"{src}.conv.modulation.weight"].t())),
                      (f"{dst}/mod_bias", np_(sd[f"{src}.conv.modulation.bias"] - 1))])
        if rgb:
            synth.append((f"{dst}/bias", np_(sd[f"{src}.bias"].reshape(3))))
        else:
            synth.extend([(f"{dst}/bias", np_(sd[f"{src}.activate.bias"])), (f"{dst}/noise_strength", np.float32(sd[f"{src}.noise.weight"][0].item()))])

    synth.append(("4x4/Const/const", np_(sd["input.input"])))
    layer("conv1", "4x4/Conv")
    layer("to_rgb1", "4x4/ToRGB", rgb=True)
    b = 0
    while f"convs.{2 * b}.conv.weight" in sd:
        r = 2 ** (b + 3)
        layer(f"convs.{2 * b}", f"{r}x{r}/Conv0_up", up=True)
        layer(f"convs.{2 * b + 1}", f"{r}x{r}/Conv1")
        layer(f"to_rgbs.{b}", f"{r}x{r}/ToRGB", rgb=True)
        b += 1
    n = 0
    while f"noises.noise_{n}" in sd:
        synth.append((f"noise{n}", np_(sd[f"noises.noise_{n}"])))
        n += 1
    return mapping, synth, [("dlatent_avg", np_(w_avg))]


def tf_pickle_bytes(sd, w_avg, marker_path):
    src = SOURCE_TEMPLATE.format(marker=str(marker_path))
    mapping, synth, own = rosinality_to_tf(sd, w_avg)

    def net(name, variables, components=None):
        return Network(dict(version=4, name=name, static_kwargs={}, components=components or {},
                            build_module_src=src, build_func_name=name, variables=variables))

    gs = net("G_main", own, {"mapping": net("G_mapping", mapping), "synthesis": net("G_synthesis", synth)})
    with fake_nvlabs_modules():
        return pickle.dumps((net("G", []), net("D", []), gs), protocol=3)
