"""Does `evaluate`'s rule keep the right checkpoint? Compare its pick with the mini world's ground truth.

Usage: python scripts/mini_world/checkpoint_choice.py RUN [RUN ...] [--copy results/mini-evaluation]

For each run dir (trained with a `mini-world-2:DOMAIN` ground truth, so that every checkpoint's row in
eval.jsonl holds the judge's figures), it applies `evaluation.best_step`, which sees only the CLIP
metrics, and sets its pick beside the checkpoint that the ground truth prefers: the highest
`judged_target x shape_kept` (the judge's share of target-domain images times the share that kept
their shape; either alone rewards a run that drops the other). Prints a markdown table; with
--copy, copies each run's eval.jsonl and evaluation.png to COPY/<preset>-<layers>/.
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from nada_utils.adapt.run_dir import read_config, read_evals  # noqa: E402
from nada_utils.errors import NadaError  # noqa: E402
from nada_utils.measure.evaluation import best_step  # noqa: E402


def truth(row: dict) -> float:
    return row["judged_target"] * row["shape_kept"]


def compare(run: Path) -> dict:
    """The rule's step and the ground truth's best step of one run, with their figures."""
    rows = sorted(read_evals(run), key=lambda r: r["step"])
    if not rows or "judged_target" not in rows[0]:
        raise NadaError(f"{run} has no checkpoint rows with the judge's figures; train it with a mini-world-2 ground truth")
    by_step = {r["step"]: r for r in rows}
    step, _ = best_step(rows)
    best = max(rows, key=truth)
    cfg = read_config(run)
    return {"run": run, "preset": cfg.extras.get("preset", "?"), "layers": cfg.layers, "steps": [r["step"] for r in rows],
            "rule": step, "rule_row": by_step[step], "best": best["step"], "best_row": best, "last_row": rows[-1]}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--copy", type=Path, help="copy each run's eval.jsonl and evaluation.png here")
    args = p.parse_args()
    print("| run | checkpoints | the rule keeps | its judged x shape | best of the run (step) | last checkpoint |")
    print("|---|---|---|---|---|---|")
    for run in args.runs:
        c = compare(run)
        steps = c["steps"]
        span = f"{steps[0]}-{steps[-1]}, every {steps[1] - steps[0]}" if len(steps) > 1 else str(steps[0])

        def fig(row):
            return f"{truth(row):.3f} ({row['judged_target']:.2f} x {row['shape_kept']:.2f})"

        print(f"| {c['preset']} `{c['layers']}` | {span} | {c['rule']} | {fig(c['rule_row'])} | "
              f"{fig(c['best_row'])} ({c['best']}) | {fig(c['last_row'])} |")
        if args.copy:
            dest = args.copy / f"{c['preset']}-{c['layers'].replace(':', '-')}"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("eval.jsonl", "evaluation.png"):
                shutil.copy2(run / name, dest / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
