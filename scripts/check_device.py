"""Check that the generator gives the same images on an accelerator as on the CPU, and time it.

Usage: python scripts/check_device.py [--device cuda] [--size 1024] [--batch 2]
Builds a random-weight config-f generator of the real size (no download), renders the same ws on the
CPU and on the device, prints the relative difference, then the median time of forward and
forward+backward passes and the peak memory on the device.
"""

import argparse
import statistics
import time

import torch

from nada_utils.devices import resolve_device
from nada_utils.models.builtin_models import random_generator


def timed(fn, device, repeats=5):
    times = []
    for _ in range(repeats + 1):  # the first call warms up (allocator, cuDNN autotune)
        if device.type == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times[1:])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--device", default="cuda")
    p.add_argument("--size", type=int, default=1024)
    p.add_argument("--batch", type=int, default=2)
    args = p.parse_args()
    device = resolve_device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = False  # compare in true float32
    torch.backends.cudnn.allow_tf32 = False
    G = random_generator(args.size)
    ws = G.mapping(torch.randn(args.batch, G.z_dim, generator=torch.Generator().manual_seed(0)), truncation_psi=0.7)
    with torch.no_grad():
        ref = G.synthesis(ws)
        Gd = G.to(device)
        out = Gd.synthesis(ws.to(device)).cpu()
    rel = ((out - ref).norm() / ref.norm()).item()
    print(f"device={device} torch={torch.__version__} size={args.size} batch={args.batch}")
    print(f"relative difference device vs cpu: {rel:.2e}")
    wsd = ws.to(device)
    with torch.no_grad():
        fwd = timed(lambda: Gd.synthesis(wsd), device)
    Gd.requires_grad_(True)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    fb = timed(lambda: Gd.synthesis(wsd).square().mean().backward(), device)
    print(f"forward {fwd * 1000:.1f} ms, forward+backward {fb * 1000:.1f} ms (median of 5)")
    if device.type == "cuda":
        print(f"peak memory (forward+backward) {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
    return 0 if rel < 1e-4 else 1


if __name__ == "__main__":
    raise SystemExit(main())
