"""Parity check: nada's StyleGAN3Generator against NVlabs' networks_stylegan3 (its CPU reference ops).

Not a test (tests never touch the network, and this needs NVlabs' code): a script for whoever changes
models/stylegan3.py. NVlabs' code: `git clone https://github.com/NVlabs/stylegan3 /tmp/sg3ref` (compared
at c233a919a6faee6e36a316ddd4eddababad1adf9); scipy for it: `pip install --target /tmp/sg3deps scipy`.
NVlabs' code, scipy and the tests' helpers come from PYTHONPATH (nothing here edits sys.path).
Run: PYTHONPATH=/tmp/sg3ref:/tmp/sg3deps:tests OMP_NUM_THREADS=1 python scripts/experiments/stylegan3_parity.py [--pickle] [--fixtures] [--full] [--dump] [--export]
  (default: T and R at 16/64/32 px; --pickle: every size through an NVlabs-written pickle and load_generator;
  --fixtures: tests/nvlabs_sg3_fixtures.py's layout against NVlabs' pickles; --full: published channels at 256 px;
  --export: an adapted generator.pt that nada exports, loaded into NVlabs' Generator by the documented note)
"""
import io
import pickle
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from nvlabs_sg3_fixtures import randomise  # the tests' helper: the same non-trivial weights
from training import networks_stylegan3 as nv

from nada_utils.models.stylegan3 import CONFIGS, StyleGAN3Generator, make_transform

warnings.filterwarnings("ignore")

torch.manual_seed(0)


LAYER_ATTRS = ["is_torgb", "is_critically_sampled", "use_fp16", "in_channels", "out_channels", "in_sampling_rate",
               "out_sampling_rate", "tmp_sampling_rate", "in_cutoff", "out_cutoff", "in_half_width", "out_half_width",
               "conv_kernel", "conv_clamp", "magnitude_ema_beta", "up_factor", "up_taps", "down_factor", "down_taps",
               "down_radial", "padding"]


def compare(cfg, kwargs, *, res, n_z=4):
    G_nv = nv.Generator(**kwargs).eval()
    randomise(G_nv)
    ours = StyleGAN3Generator(**{k: v for k, v in kwargs.items()}).eval()
    # From-scratch filter design, before loading: NVlabs' scipy filters vs ours.
    fdiff = 0.0
    for name in G_nv.synthesis.layer_names:
        a, b = getattr(G_nv.synthesis, name), getattr(ours.synthesis, name)
        for attr in LAYER_ATTRS:
            va, vb = getattr(a, attr), getattr(b, attr)
            assert np.allclose(np.asarray(va, dtype=float), np.asarray(vb, dtype=float), rtol=1e-12, atol=0), (name, attr, va, vb)
        assert list(a.in_size) == list(b.in_size) and list(a.out_size) == list(b.out_size), name
        for f in ("up_filter", "down_filter"):
            fa, fb = getattr(a, f), getattr(b, f)
            assert (fa is None) == (fb is None), (name, f)
            if fa is not None:
                assert fa.shape == fb.shape, (name, f)
                fdiff = max(fdiff, (fa - fb).abs().max().item())
    inp_a, inp_b = G_nv.synthesis.input, ours.synthesis.input
    assert list(inp_a.size) == list(inp_b.size) and inp_a.sampling_rate == inp_b.sampling_rate and inp_a.bandwidth == inp_b.bandwidth
    assert G_nv.num_ws == ours.num_ws and G_nv.synthesis.layer_names == ours.synthesis.layer_names
    ours.load_state_dict(G_nv.state_dict(), strict=True)
    z = torch.from_numpy(np.stack([np.random.RandomState(s).randn(G_nv.z_dim) for s in range(n_z)])).float()
    c = torch.eye(G_nv.c_dim)[torch.arange(n_z) % G_nv.c_dim] if G_nv.c_dim else None
    rows = []
    for label, transform in [("identity", torch.eye(3)), ("shift+rot", make_transform((0.13, -0.07), 17.0))]:
        for psi in (1.0, 0.7):
            with torch.no_grad():
                G_nv.synthesis.input.transform.copy_(transform)
                ours.synthesis.input.transform.copy_(transform)
                img_nv = G_nv(z, c, truncation_psi=psi, noise_mode="const")
                img = ours(z, c, truncation_psi=psi)
            rows.append((label, psi, (img - img_nv).abs().max().item(), img_nv.abs().max().item()))
    # One image at a time (batch 1) against the batch: the batch-wide style pre-normalisation.
    with torch.no_grad():
        single = torch.cat([ours(z[i:i + 1], None if c is None else c[i:i + 1], truncation_psi=0.7) for i in range(n_z)])
    batch_dep = (single - img).abs().max().item()
    print(f"{cfg} {res}px c_dim={G_nv.c_dim} num_ws={ours.num_ws} layers={len(ours.synthesis.layer_names)} "
          f"filters from scratch: max|diff| {fdiff:.2e}; batch-1 vs batch-{n_z}: {batch_dep:.2e}")
    for label, psi, diff, scale in rows:
        print(f"   transform {label:9s} psi {psi}: max|ours - NVlabs| = {diff:.2e} (max|img| {scale:.3f})")
    return G_nv, ours, z, c


def via_pickle(G_nv, z, c):
    """A real NVlabs-written pickle (persistence, embedded source) through nada's load_generator."""
    from nada_utils import load_generator

    with torch.no_grad():
        G_nv.synthesis.input.transform.copy_(make_transform((0.05, 0.1), -23.0))  # the pickle carries it
    buf = io.BytesIO()
    pickle.dump({"G_ema": G_nv, "G": G_nv, "D": None}, buf)
    with tempfile.NamedTemporaryFile(suffix=".pkl") as f:
        f.write(buf.getvalue())
        f.flush()
        G = load_generator(f.name)
    with torch.no_grad():
        diff = (G(z, c, truncation_psi=0.7) - G_nv(z, c, truncation_psi=0.7)).abs().max().item()
    print(f"   NVlabs-written pickle via load_generator: {type(G).__name__}, max|diff| = {diff:.2e}")
    return buf.getvalue()


if __name__ == "__main__":
    results = {}
    for cfg in "TR":
        base = dict(CONFIGS[cfg])
        small = dict(base, channel_base=base["channel_base"] // 64, channel_max=base["channel_max"] // 8)
        for res, c_dim in [(16, 0), (64, 0), (32, 3)]:
            kwargs = dict(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=res, img_channels=3,
                          mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (32 / 20000), **small)
            G_nv, ours, z, c = compare(cfg, kwargs, res=res)
            if "--pickle" in sys.argv or res == 32:
                results[(cfg, res)] = via_pickle(G_nv, z, c)
    if "--dump" in sys.argv:
        for (cfg, res), data in results.items():
            open(f"/tmp/sg3_real_{cfg}_{res}.pkl", "wb").write(data)


def fixture_layout_check():
    """tests/nvlabs_sg3_fixtures.py writes what NVlabs' persistence writes (module tree, state keys, attributes)."""
    from nvlabs_sg3_fixtures import make_tiny_sg3, sg3_pickle_bytes, tiny_init_kwargs

    from nada_utils.weights.formats import nvlabs_modules
    from nada_utils.weights.safe_pickle import restricted_load

    hooks = lambda k: k.startswith("_") and k not in ("_parameters", "_buffers", "_modules", "_init_args", "_init_kwargs")
    for cfg in "TR":
        for c_dim in (0, 2):
            init = tiny_init_kwargs(cfg, c_dim=c_dim)
            G_nv = nv.Generator(**{k: dict(v) if isinstance(v, dict) else v for k, v in init.items()}).eval()
            ours = make_tiny_sg3(cfg, c_dim=c_dim)
            with tempfile.TemporaryDirectory() as d:
                real = f"{d}/real.pkl"
                with open(real, "wb") as f:
                    pickle.dump({"G_ema": G_nv}, f)
                fake = f"{d}/fake.pkl"
                open(fake, "wb").write(sg3_pickle_bytes(ours, init, f"{d}/marker"))
                a, b = restricted_load(real)["G_ema"], restricted_load(fake)["G_ema"]
            ta, tb = dict(nvlabs_modules(a)), dict(nvlabs_modules(b))
            assert list(ta) == list(tb), (set(ta) ^ set(tb))
            n_attr = 0
            for name in ta:
                sa, sb = ta[name].state, tb[name].state
                assert ta[name].class_name == tb[name].class_name, name
                ka = {k for k in sa if not hooks(k)}
                kb = {k for k in sb if not hooks(k)}
                assert ka == kb, (name, ka ^ kb)
                for group in ("_parameters", "_buffers"):
                    shapes = lambda s: {k: None if v is None else tuple(v.shape) for k, v in s[group].items()}
                    assert shapes(sa) == shapes(sb), (name, group)
                for k in ka - {"_parameters", "_buffers", "_modules", "_init_args", "_init_kwargs", "training"}:
                    va, vb = sa[k], sb[k]
                    assert type(va) is type(vb), (name, k, type(va), type(vb))
                    assert np.array_equal(np.asarray(va, dtype=object), np.asarray(vb, dtype=object)) or np.allclose(va, vb, rtol=1e-12), (name, k, va, vb)
                    n_attr += 1
                norm = lambda d: {k: (dict(v) if isinstance(v, dict) else v) for k, v in dict(d).items()}
                assert tuple(sa["_init_args"]) == tuple(sb["_init_args"]), (name, "_init_args")
                assert norm(sa["_init_kwargs"]) == norm(sb["_init_kwargs"]), (name, "_init_kwargs")
            print(f"fixture layout {cfg} c_dim={c_dim}: {len(ta)} modules, {n_attr} attributes, init args: same as NVlabs' pickle")


if "--fixtures" in sys.argv:
    fixture_layout_check()


def full_size(cfg, res):
    """The published channel counts and z/w sizes (random weights), one image: NVlabs' CPU reference ops vs ours."""
    import time
    kwargs = dict(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
                  mapping_kwargs=dict(num_layers=2), magnitude_ema_beta=0.5 ** (32 / 20000), **CONFIGS[cfg])
    G_nv = nv.Generator(**kwargs).eval()
    randomise(G_nv)
    ours = StyleGAN3Generator(**kwargs).eval()
    ours.load_state_dict(G_nv.state_dict(), strict=True)
    z = torch.from_numpy(np.random.RandomState(0).randn(1, 512)).float()
    with torch.no_grad():
        for G in (G_nv, ours):
            G.synthesis.input.transform.copy_(make_transform((0.1, 0.05), 7.0))
        t = time.perf_counter(); a = G_nv(z, None, truncation_psi=0.7); t_nv = time.perf_counter() - t
        t = time.perf_counter(); b = ours(z, truncation_psi=0.7); t_ours = time.perf_counter() - t
    print(f"full-size {cfg} {res}px (published channels, random weights): max|ours - NVlabs| = {(a - b).abs().max().item():.2e} "
          f"(max|img| {a.abs().max().item():.3f}); CPU time NVlabs ref {t_nv:.1f} s, ours {t_ours:.1f} s")


if "--full" in sys.argv:
    for cfg, res in [("T", 256), ("R", 256)]:
        full_size(cfg, res)


def exported_into_nvlabs():
    """An adapted StyleGAN3 exported by nada (`generator.pt`) loaded into NVlabs' own Generator, as
    docs/STYLEGAN3.md's loader note says, against nada's rendering of the same file."""
    from nada_utils import load_generator
    from nada_utils.adapt.config import make_config
    from nada_utils.adapt.trainer import train

    for name in ("random:sg3-t-tiny", "random:sg3-r-tiny"):
        with tempfile.TemporaryDirectory() as run:
            cfg = make_config("tiny", generator=name, layers="all", steps=3, eval_samples=0, sample_every=0)
            train(cfg, run, progress=False, log=lambda _: None)
            ours = load_generator(Path(run) / "generator.pt")
            ckpt = torch.load(Path(run) / "generator.pt", weights_only=True)  # the loader note, line by line
            G_nv = nv.Generator(**ckpt["nada"]["arch"]).eval()
            G_nv.load_state_dict(ckpt["G_ema"])
        z = torch.randn(4, G_nv.z_dim)
        with torch.no_grad():
            diff = (G_nv(z, None, truncation_psi=0.7, noise_mode="const") - ours(z, truncation_psi=0.7)).abs().max().item()
        print(f"exported {name} (3 steps of `all`) in NVlabs' Generator: max|NVlabs - nada| = {diff:.2e}")


if "--export" in sys.argv:
    exported_into_nvlabs()
