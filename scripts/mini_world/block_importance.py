"""Block importance in the mini world: gap_closed for every layer strategy on one fixed budget.

Usage: python scripts/mini_world/block_importance.py [--preset mini-sketch] [--steps 200] [--out docs/block_importance.json]

Runs the preset once per layer spec (last:K for every K, all, auto:K) with everything else equal,
and prints a markdown table of the ground-truth metrics. Each run takes a few minutes on a CPU.
"""

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nada_utils import load_generator  # noqa: E402
from nada_utils.config import make_config  # noqa: E402
from nada_utils.fileio import atomic_write_text  # noqa: E402
from nada_utils.freezing import synthesis_blocks  # noqa: E402
from nada_utils.trainer import train  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="mini-sketch")
    p.add_argument("--steps", type=int, default=None, help="default: the preset's")
    p.add_argument("--specs", default=None, help="comma-separated layer specs (default: last:1..B, all, auto:2,4,8)")
    p.add_argument("--out", default="docs/block_importance.json")
    args = p.parse_args()
    base = make_config(args.preset)
    G = load_generator(base.generator)
    blocks = len(synthesis_blocks(G))
    specs = args.specs.split(",") if args.specs else [f"last:{k}" for k in range(1, blocks + 1)] + ["all"] + \
        [f"auto:{k}" for k in (2, 4, 8) if k <= G.num_ws]
    rows = []
    for spec in specs:
        t0 = time.time()
        with tempfile.TemporaryDirectory() as d:
            cfg = make_config(args.preset, layers=spec, steps=args.steps, sample_every=0, checkpoint_every=0)
            train(cfg, Path(d) / "run", progress=False, log=lambda m: None)
            metrics = json.loads((Path(d) / "run" / "metrics.json").read_text())
        rows.append({"layers": spec, "seconds": round(time.time() - t0, 1), **metrics})
        print(f"{spec}: gap_closed {metrics['gap_closed']:.3f} structure {metrics['structure']:.3f} "
              f"target_share {metrics['target_share']:.3f} ({time.time() - t0:.0f} s)", flush=True)
        atomic_write_text(args.out, json.dumps({"preset": args.preset, "steps": cfg.steps, "rows": rows}, indent=2) + "\n")
    print(f"\n| layers | gap_closed | structure (frozen {rows[0]['structure_frozen']:.3f}) | target_share | seconds |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| `{r['layers']}` | {r['gap_closed']:.3f} | {r['structure']:.3f} | {r['target_share']:.3f} | {r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
