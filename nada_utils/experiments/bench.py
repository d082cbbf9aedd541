"""Benchmark of the training step at real model sizes (random weights, so nothing is downloaded).

`run_bench` builds the trainer's own setup from `random:SIZE` (a config-f StyleGAN2; with `arch`
"sg3-t" / "sg3-r", `random:sg3-t-SIZE`, a StyleGAN3 of config T or R) and
`random:ViT-B/32`-style CLIPs, and times the trainer's own step (`training_step.forward_losses`,
backward, Adam). It reports:
- the median time of warm steps, and of the layer reselection of `auto:K` / `gradnorm:K` apart;
- the FLOPs of one step, counted by `torch.utils.flop_counter` on a `meta`-device twin (shapes only,
  so 1024 px is counted in a second on any laptop). Only dense ops count (matmuls, convolutions,
  attention): the work no implementation can skip. It is counted on the plain path, so a fast path
  that adds work (checkpointing recomputes) or removes none cannot flatter the ratio below;
- the machine's dense matmul rate, measured in the same run in the step's precision (bf16 when the
  generators run in bf16, though CLIP stays float32: the floor is then a lower bound);
- the ratio `step time / (FLOPs / matmul rate)`: how far the step is from the compute floor;
- peak memory: estimated for any device by `memory.track_memory` on the meta twin, and measured on
  CUDA (`torch.cuda.max_memory_allocated`).
"""

from __future__ import annotations

import statistics
import time
from typing import Callable

import torch

from nada_utils.devices import resolve_device, tune_cpu_allocator

MATMUL_SIDE = {"cpu": 2048, "cuda": 8192}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_runs(fn: Callable[[], None], *, repeats: int, warmup: int, device: torch.device) -> list[float]:
    """Seconds of each of `repeats` calls of `fn`, after `warmup` untimed ones (the device synchronised)."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times


class MatmulProbe:
    """Times square float matmuls, large enough to saturate the device, in a given precision.

    The benchmark interleaves probes with its timed steps, so the rate and the steps are measured
    under the same conditions (shared and throttled machines drift by tens of percent in minutes).
    """

    def __init__(self, device: torch.device, *, dtype=torch.float32, tf32: bool = False):
        self.device, self.tf32 = device, tf32
        self.n = MATMUL_SIDE.get(device.type, 2048)
        self.a = torch.randn(self.n, self.n, device=device, dtype=dtype)
        self.b = torch.randn(self.n, self.n, device=device, dtype=dtype)
        self.rates: list[float] = []
        self.sample(3)  # warm up the BLAS

    def sample(self, count: int = 3) -> None:
        from nada_utils.adapt.training_step import precision

        with precision(("tf32",) if self.tf32 else ()):
            for _ in range(count):
                _sync(self.device)
                t0 = time.perf_counter()
                self.a @ self.b
                _sync(self.device)
                self.rates.append(2 * self.n**3 / (time.perf_counter() - t0))

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)


ARCHS = ("sg2", "sg3-t", "sg3-r")  # StyleGAN2 config F, StyleGAN3 configs T and R


def _config(size: int, batch: int, clip: tuple[str, ...], layers: str, device: torch.device, fast: str, arch: str = "sg2"):
    from nada_utils.adapt.config import make_config
    from nada_utils.adapt.losses import DIRECTION_FLOOR

    generator = f"random:{size}" if arch == "sg2" else f"random:{arch}-{size}"
    # CLIP in float32, as the matmul rate the floor is computed from: training's default on a GPU runs CLIP in
    # float16 (--clip-precision auto, as the official code), a speed-up this benchmark does not count. The
    # direction floor is given, as the meta twin's noise strengths cannot be read to choose it (it costs nothing).
    return make_config(None, generator=generator, clip_models=tuple(f"random:{m}" for m in clip),
                       clip_weights=(1.0,) * len(clip), layers=layers, batch=batch, device=str(device), fast=fast,
                       clip_precision="fp32", direction_floor=DIRECTION_FLOOR)


def _setup(cfg, device: torch.device):
    from nada_utils.adapt.setup import build_setup, layer_plan

    setup = build_setup(cfg, device)
    spec, candidates, optimizer = layer_plan(setup.G_train, cfg)
    return setup, spec, candidates, optimizer


def _step_fn(setup, optimizer, candidates, cfg, fast: tuple[str, ...], device: torch.device, *, seed: int = 0):
    """One training step exactly as the trainer runs it (without logging), on fresh latents each call."""
    from nada_utils.adapt.latents import sample_latents
    from nada_utils.adapt.training_step import StepSettings, backward_step

    sampler = torch.Generator().manual_seed(seed)
    settings = StepSettings(truncation=cfg.truncation, fast=fast, train_mapping="mapping" in candidates)
    G = setup.G_frozen

    def step() -> None:
        latents = sample_latents(sampler, cfg.batch, z_dim=G.z_dim, num_ws=G.num_ws, mixing=0.0, device=device)
        backward_step(setup, optimizer, latents, setup.directions, settings, device)
        optimizer.step()

    return step


def _conv_backward_flops(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed, output_padding,
                         groups, output_mask, out_shape=None, **kwargs) -> int:
    """torch's formula for `convolution_backward`, with the weight gradient of grouped convolutions fixed.

    torch 2.14 counts that gradient as if the convolution were not grouped (`groups` times too many;
    3x the forward instead of 2x for the generator's batch-grouped convolutions). Every multiply of
    the forward appears exactly once in the weight gradient, so its count is the forward's.
    """
    from torch.utils import flop_counter

    flops = flop_counter.conv_backward_flop(grad_out_shape, x_shape, w_shape, bias, stride, padding, dilation, transposed,
                                            output_padding, groups, [output_mask[0], False, output_mask[2]], out_val=out_shape)
    if output_mask[1]:
        flops += flop_counter.conv_flop_count(x_shape, w_shape, grad_out_shape, transposed=transposed)
    return flops


def count_flops(fn: Callable[[], None]) -> int:
    """Dense-op FLOPs of running `fn` (matmuls, convolutions, attention), by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False, custom_mapping={torch.ops.aten.convolution_backward: _conv_backward_flops}) as counter:
        fn()
    return int(counter.get_total_flops())


def estimate_step(cfg, *, checkpointing: bool = False) -> dict:
    """FLOPs and estimated peak memory of one training step, from a twin of the models on `meta`."""
    from nada_utils.experiments.memory import tensor_bytes, track_memory

    meta = torch.device("meta")
    setup, _, candidates, optimizer = _setup(cfg, meta)
    setup.G_train.checkpointing = checkpointing
    step = _step_fn(setup, optimizer, candidates, cfg, (), meta)
    step()  # creates Adam's state, which is resident from then on
    resident = tensor_bytes(setup.G_frozen, setup.G_train, [gm.model for gm in setup.guide.models], setup.directions,
                            [optimizer.state[p] for p in optimizer.state])
    with track_memory() as mem:
        step()
    return {"flops": count_flops(step), "resident_bytes": resident,
            "peak_bytes_estimated": resident + mem.peak_bytes}


def run_bench(*, size: int = 256, batch: int = 2, clip: tuple[str, ...] = ("ViT-B/32",), layers: str = "all",
              device: str = "auto", fast: str = "none", steps: int = 5, warmup: int = 2, arch: str = "sg2",
              log: Callable[[str], None] = print) -> dict:
    """Time, count and compare one configuration; returns a JSON-safe dict (see the module docstring)."""
    from nada_utils.adapt.selection import select_layers
    from nada_utils.adapt.training_step import parse_fast, precision, prepare_fast

    dev = resolve_device(device)
    if dev.type == "cpu":
        tune_cpu_allocator()
    fast_paths = parse_fast(fast, dev)
    cfg = _config(size, batch, clip, layers, dev, fast, arch)
    result: dict = {"arch": arch, "size": size, "batch": batch, "clip": list(clip), "layers": layers, "device": str(dev),
                    "device_name": torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu",
                    "threads": torch.get_num_threads(), "fast": list(fast_paths), "torch": torch.__version__}
    log(f"counting FLOPs and memory on a meta twin ({arch}, {size} px, batch {batch}, {'+'.join(clip)}) ...")
    plain = estimate_step(cfg)
    result["flops_per_step"] = plain["flops"]
    result["peak_memory_estimated"] = plain["peak_bytes_estimated"]
    result["peak_memory_estimated_checkpointing"] = estimate_step(cfg, checkpointing=True)["peak_bytes_estimated"]

    log(f"building the models on {dev} ...")
    setup, spec, candidates, optimizer = _setup(cfg, dev)
    t0 = time.perf_counter()
    setup.guide.clear_text_cache()
    setup.guide.text_directions(cfg.source_text, cfg.target_text, templates=cfg.templates)
    result["text_direction_seconds"] = round(time.perf_counter() - t0, 4)  # paid once per run, never per step
    prepare_fast(setup, fast_paths)
    step = _step_fn(setup, optimizer, candidates, cfg, fast_paths, dev)
    compute = torch.bfloat16 if "bf16" in fast_paths else torch.float32
    probe = MatmulProbe(dev, dtype=compute, tf32="tf32" in fast_paths)
    log(f"timing {warmup} warm-up + {steps} steps ...")
    times = _timed_runs(step, repeats=1, warmup=warmup, device=dev)
    for _ in range(steps - 1):
        probe.sample()
        times += _timed_runs(step, repeats=1, warmup=0, device=dev)
    probe.sample()
    rate = probe.rate
    del probe  # its matrices must not count in the memory measured below
    result["step_seconds"] = statistics.median(times)
    result["step_seconds_all"] = [round(t, 4) for t in times]
    if dev.type == "cuda":
        torch.cuda.reset_peak_memory_stats(dev)
        step()
        result["peak_memory_measured"] = torch.cuda.max_memory_allocated(dev)

    if spec.dynamic:
        from nada_utils.adapt.latents import sample_latents

        sampler = torch.Generator().manual_seed(1)
        G = setup.G_frozen

        def latents_of(n):
            with torch.no_grad():
                return sample_latents(sampler, n, z_dim=G.z_dim, num_ws=G.num_ws, mixing=0.0, device=dev).ws(G, 1.0)

        def select() -> None:
            with precision(fast_paths):
                select_layers(spec, setup.G_train, latents_of(cfg.batch), lambda: latents_of(cfg.auto_batch),
                              lambda images: setup.guide.global_(images, setup.global_targets), candidates=candidates,
                              iters=cfg.auto_iters, lr=cfg.auto_lr, include_torgb=cfg.include_torgb)

        log(f"timing the {spec.kind} layer selection ...")
        result["selection_seconds"] = statistics.median(_timed_runs(select, repeats=max(1, steps // 2), warmup=1,
                                                                        device=dev))
        result["selection_every"] = cfg.auto_every

    result["matmul_flops_per_second"] = rate
    result["matmul_precision"] = "bf16" if compute == torch.bfloat16 else ("tf32" if "tf32" in fast_paths else "fp32")
    result["floor_seconds"] = result["flops_per_step"] / rate
    result["ratio_to_floor"] = result["step_seconds"] / result["floor_seconds"]
    return result


ARCH_NAMES = {"sg2": "StyleGAN2 config F", "sg3-t": "StyleGAN3-T", "sg3-r": "StyleGAN3-R"}


def format_result(r: dict) -> str:
    """A few readable lines for the terminal."""
    gib = 2**30
    lines = [
        f"{ARCH_NAMES[r.get('arch', 'sg2')]}, {r['size']} px, batch {r['batch']}, CLIP {'+'.join(r['clip'])}, layers {r['layers']}, {r['device_name']} "
        f"({r['threads']} threads), fast paths: {', '.join(r['fast']) or 'none'}",
        f"step: {r['step_seconds']:.3f} s median of {len(r['step_seconds_all'])} warm steps",
        f"FLOPs per step: {r['flops_per_step'] / 1e12:.3f} TFLOP (plain path, dense ops)",
        f"matmul rate: {r['matmul_flops_per_second'] / 1e12:.3f} TFLOP/s ({r['matmul_precision']}) -> floor "
        f"{r['floor_seconds']:.3f} s",
        f"ratio to the compute floor: {r['ratio_to_floor']:.2f}",
        f"peak memory, estimated: {r['peak_memory_estimated'] / gib:.2f} GiB; with gradient checkpointing "
        f"{r['peak_memory_estimated_checkpointing'] / gib:.2f} GiB",
    ]
    if "peak_memory_measured" in r:
        lines.append(f"peak memory, measured: {r['peak_memory_measured'] / gib:.2f} GiB")
    if "selection_seconds" in r:
        lines.append(f"layer selection: {r['selection_seconds']:.3f} s each, every {r['selection_every']} step(s)")
    lines.append(f"text direction: {r['text_direction_seconds']:.3f} s, once per run")
    return "\n".join(lines)
