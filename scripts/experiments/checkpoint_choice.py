"""Which checkpoint should `evaluate` keep? Rules over the CLIP metrics, set against the mini world's judge.

Usage: python scripts/experiments/checkpoint_choice.py RUN [RUN ...] [--table] [--copy results/mini-evaluation]

Every run dir was trained with a `mini-world:DOMAIN` ground truth, so each checkpoint's row in eval.jsonl
holds the judge's figures beside the CLIP metrics. The ground truth's best checkpoint is the highest
`judged_target x shape_kept` (either share alone rewards a run that drops the other). Each candidate rule
sees only what training can see (CLIP similarity, direction, diversity, structure); for each, the share of
runs where its pick is within 0.03 of the run's best, and how far below the last checkpoint it falls at
worst. `evaluation.best_step` is the rule nada ships. --table prints one line per run with the shipped
rule's pick; --copy copies each run's eval.jsonl and evaluation.png to COPY/<preset>-<layers>/.
"""

import argparse
import shutil
import sys
from pathlib import Path

from nada_utils.adapt.run_dir import read_config, read_evals
from nada_utils.errors import NadaError
from nada_utils.measure.evaluation import best_step

NEAR = 0.03  # a pick this close to the run's best counts as a hit
WORSE_THAN_LAST = 0.05  # a rule may never fall further below the last checkpoint than this


def truth(row: dict) -> float:
    return row["judged_target"] * row["shape_kept"]


def earlier_rule(rows: list[dict]) -> int:
    """nada's rule before the seed studies: among checkpoints with diversity >= 0.5 x the frozen one's (all if
    none), those with clip_gain >= 0.9 x the largest; of these the highest structure_clip."""
    healthy = [r for r in rows if r["diversity_ratio"] >= 0.5] or rows
    top = max(r["clip_gain"] for r in healthy)
    near = [r for r in healthy if r["clip_gain"] >= 0.9 * top] if top > 0 else healthy
    return max(near, key=lambda r: r["structure_clip"])["step"]


def largest(key):
    return lambda rows: max(rows, key=lambda r: r[key])["step"]


def latest_near_largest(key, share):
    def rule(rows):
        top = max(r[key] for r in rows)
        return max(r["step"] for r in rows if r[key] >= share * top)
    return rule


def largest_late(key, share):
    def rule(rows):
        return max((r for r in rows if r["step"] >= share * rows[-1]["step"]), key=lambda r: r[key])["step"]
    return rule


def gain_with_structure(weight):
    return lambda rows: max(rows, key=lambda r: r["clip_gain"] + weight * r["structure_clip"])["step"]


RULES = {
    "shipped (evaluation.best_step)": lambda rows: best_step(rows)[0],
    "the earlier rule": earlier_rule,
    "largest clip_gain": largest("clip_gain"),
    "largest directional": largest("directional"),
    **{f"latest with {k} >= {s:g} x the largest": latest_near_largest(k, s)
       for k in ("clip_gain", "directional") for s in (0.9, 0.95, 0.98)},
    **{f"largest {k} in the last {1 - s:.0%} of steps": largest_late(k, s) for k in ("clip_gain", "directional")
       for s in (0.5, 0.8)},
    **{f"largest clip_gain + {w:g} x structure_clip": gain_with_structure(w) for w in (0.1, 0.3, 1.0)},
}


def load(run: Path) -> list[dict]:
    rows = sorted(read_evals(run), key=lambda r: r["step"])
    if not rows or "judged_target" not in rows[0]:
        raise NadaError(f"{run} has no checkpoint rows with the judge's figures; train it with a mini-world ground truth")
    return rows


def score_rules(runs: dict[Path, list[dict]]) -> list[dict]:
    """Per rule: the share of runs within NEAR of their best, and the worst shortfall against the last checkpoint."""
    out = []
    for name, rule in RULES.items():
        hits, worst = 0, 0.0
        for rows in runs.values():
            by_step = {r["step"]: r for r in rows}
            got = truth(by_step[rule(rows)])
            hits += got >= max(truth(r) for r in rows) - NEAR
            worst = max(worst, truth(rows[-1]) - got)
        out.append({"rule": name, "hits": hits / len(runs), "worst_below_last": worst,
                    "passes": hits / len(runs) >= 0.8 and worst <= WORSE_THAN_LAST})
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+", type=Path)
    p.add_argument("--table", action="store_true", help="also one line per run: the shipped rule's pick and the best")
    p.add_argument("--copy", type=Path, help="copy each run's eval.jsonl and evaluation.png here")
    args = p.parse_args()
    runs = {run: load(run) for run in args.runs}
    print(f"{len(runs)} runs, {sum(len(r) for r in runs.values())} checkpoints\n")
    print(f"| rule | within {NEAR:g} of the run's best | worst below the last checkpoint | meets both |")
    print("|---|---|---|---|")
    for r in score_rules(runs):
        print(f"| {r['rule']} | {r['hits']:.0%} | {r['worst_below_last']:.3f} | {'yes' if r['passes'] else 'no'} |")
    if args.table:
        print("\n| run | checkpoints | kept | its judged x shape | best of the run (step) |\n|---|---|---|---|---|")
        for run, rows in runs.items():
            step = best_step(rows)[0]
            best = max(rows, key=truth)
            by_step = {r["step"]: r for r in rows}
            print(f"| {run} | {rows[0]['step']}-{rows[-1]['step']} | {step} | {truth(by_step[step]):.3f} | "
                  f"{truth(best):.3f} ({best['step']}) |")
    if args.copy:
        for run in runs:
            cfg = read_config(run)
            dest = args.copy / f"{cfg.extras.get('preset', '?')}-{cfg.layers.replace(':', '-')}"
            dest.mkdir(parents=True, exist_ok=True)
            for name in ("eval.jsonl", "evaluation.png"):
                shutil.copy2(run / name, dest / name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
