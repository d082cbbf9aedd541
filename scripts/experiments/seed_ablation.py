"""Which of a mini preset's departures from the official code earn their place? Toggle each alone, over seeds.

    python scripts/experiments/seed_ablation.py mini-sketch mini-cartoon --seeds 0-3 --out runs/ablation \
        --jobs 2 --report docs/seed_study/ablation.md

Every variant starts from `train --preset P --reference` (the official behaviour with the preset's
CLIP, texts, layers, toRGB, mixing, lr and budget) and changes one thing: one of nada's departures
(docs/REFERENCE.md) or one of the preset's knobs. `shipped` is the preset as it was before this study,
every departure at once. Runs go to OUT/PRESET/VARIANT/seed-N/ (finished ones are reused, interrupted
ones resumed: `nada_utils.experiments.runs`), checkpoint every 50 steps, each scored by the judge on 128
held-out latents. The reference runs go on past the budget, so that its checkpoints give the `steps`
knob. `--variants` runs only those (plus the reference).

A departure wins where it beats the reference's mean and does not lose on the worst seed, both on the
judge's `judged_target x shape_kept` at the preset's budget; the verdict also says where edge_f1
falls below the frozen generator's on a seed (the acceptance asks for it above on every seed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from nada_utils.adapt.config import make_config
from nada_utils.adapt.run_dir import read_evals
from nada_utils.experiments.runs import PlannedRun, execute
from nada_utils.experiments.study import slug
from nada_utils.models.rendering import parse_seeds

CADENCE = dict(checkpoint_every=50, sample_every=100)
# The presets' knobs before this study, spelled out so that the plan stays what it was when presets change.
KNOBS = {
    "mini-sketch": dict(layers="last:3", include_torgb=True, mixing=0.9, lr=0.002, steps=500,
                        clip_models=("mini-clip-2-robust",)),
    "mini-cartoon": dict(layers="all", include_torgb=False, mixing=0.0, lr=0.002, steps=250,
                         clip_models=("mini-clip-2",)),
}
# The preset as shipped before this study: its knobs and nada's departures, all at once.
NADA_DEFAULTS = dict(noise="stored", direction_floor=0.1, mixing_cutoff="shared")
SHIPPED = {"mini-sketch": dict(freeze_noise=True, **NADA_DEFAULTS), "mini-cartoon": dict(freeze_noise=False, **NADA_DEFAULTS)}
# name: (reference mode, overrides). The first is the baseline every other is compared with.
VARIANTS = {
    "mini-sketch": {
        "reference": (True, {}),
        "shipped": (False, SHIPPED["mini-sketch"]),
        "noise stored": (True, {"noise": "stored"}),
        "floor 0.1": (True, {"direction_floor": 0.1}),
        "cutoff shared": (True, {"mixing_cutoff": "shared"}),
        "noise strengths frozen": (True, {"freeze_noise": True}),
        "toRGB frozen": (True, {"include_torgb": False}),
        "no mixing": (True, {"mixing": 0.0}),
        "mini-clip-2": (True, {"clip_models": ("mini-clip-2",)}),
        "lr 0.0016": (True, {"lr": 0.0016}),
        "layers all": (True, {"layers": "all"}),
        # The two departures that won or tied at 400 steps, together: chosen after the single toggles.
        "noise strengths frozen, lr 0.0016": (True, {"freeze_noise": True, "lr": 0.0016}),
    },
    "mini-cartoon": {
        "reference": (True, {}),
        "shipped": (False, SHIPPED["mini-cartoon"]),
        "noise stored": (True, {"noise": "stored"}),
        "floor 0.1": (True, {"direction_floor": 0.1}),
        "noise strengths frozen": (True, {"freeze_noise": True}),
        "toRGB trained": (True, {"include_torgb": True}),
        "mixing 0.9": (True, {"mixing": 0.9}),
        "mini-clip-2-robust": (True, {"clip_models": ("mini-clip-2-robust",)}),
        "lr 0.0016": (True, {"lr": 0.0016}),
        "layers last:3": (True, {"layers": "last:3"}),
        # Second round, after the single toggles: mixing made the cartoon sooner and lost shapes.
        "mixing 0.5": (True, {"mixing": 0.5}),
        "mixing 0.9, lr 0.001": (True, {"mixing": 0.9, "lr": 0.001}),
        "lr 0.003": (True, {"lr": 0.003}),
    },
}
EXTRA_REFERENCE_STEPS = 100  # the reference trains this far past the budget (the `steps` knob)


def budget(preset: str) -> int:
    return KNOBS[preset]["steps"]


def plan(preset: str, variants: list[str], seeds: list[int], root: Path) -> list[PlannedRun]:
    runs = []
    for name in variants:
        reference, overrides = VARIANTS[preset][name]
        steps = budget(preset) + (EXTRA_REFERENCE_STEPS if name == "reference" else 0)
        for seed in seeds:
            cfg = make_config(preset, reference=reference, seed=seed, device="cpu",
                              **{**KNOBS[preset], **CADENCE, "steps": steps, **overrides})
            runs.append(PlannedRun(root / preset / slug(name.replace(" ", "-")) / f"seed-{seed}", cfg,
                                   {"preset": preset, "variant": name, "seed": seed}))
    return runs


def score(row: dict) -> float:
    return row["judged_target"] * row["shape_kept"]


def at_step(run: PlannedRun, step: int) -> dict | None:
    rows = {r["step"]: r for r in read_evals(run.run_dir)}
    return rows.get(step)


def summarize(rows: list[dict]) -> dict:
    out = {}
    for key in ("score", "judged_target", "shape_kept", "edge_f1", "edge_margin"):
        values = [r[key] for r in rows]
        out[key] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values)}
    return out


def figures(run: PlannedRun, step: int) -> dict | None:
    row = at_step(run, step)
    if row is None:
        return None
    return {"seed": run.labels["seed"], "score": score(row), "judged_target": row["judged_target"],
            "shape_kept": row["shape_kept"], "edge_f1": row["edge_f1"], "edge_margin": row["edge_f1"] - row["edge_f1_frozen"]}


def report(preset: str, runs: list[PlannedRun], at: int | None = None) -> tuple[str, list[dict]]:
    """A markdown table: each variant (and the reference at other budgets) over the seeds, with the verdict.

    `at`: compare every variant at this step (a checkpoint of each run: a run of that many steps, as the
    learning rate has no schedule) instead of the preset's budget."""
    at = at or budget(preset)
    lines = [f"### {preset} (at step {at}; seeds {', '.join(str(s) for s in sorted({r.labels['seed'] for r in runs}))})",
             "", "| variant | judged x kept: mean (worst) | judged_target mean (worst) | shape_kept worst | "
             "edge_f1 mean (worst margin over frozen) | per seed judged x kept | verdict |", "|---|---|---|---|---|---|---|"]
    by_variant: dict[str, list[PlannedRun]] = {}
    for r in runs:
        by_variant.setdefault(r.labels["variant"], []).append(r)
    entries = [(name, group, at) for name, group in by_variant.items()]
    steps = range(CADENCE["checkpoint_every"], budget(preset) + EXTRA_REFERENCE_STEPS + 1, CADENCE["checkpoint_every"])
    entries += [(f"reference, {s} steps", by_variant["reference"], s) for s in steps if s != at]
    base = None
    out = []
    for name, group, step in entries:
        rows = [f for f in (figures(r, step) for r in group) if f is not None]
        if len(rows) < len(group):
            lines.append(f"| {name} | {len(rows)} of {len(group)} seeds finished | | | | | |")
            continue
        s = summarize(rows)
        if name == "reference":
            base, verdict = s, "baseline"
        elif base is None:
            verdict = "?"
        else:
            wins = s["score"]["mean"] > base["score"]["mean"] and s["score"]["min"] >= base["score"]["min"]
            edges = s["edge_margin"]["min"] > 0
            verdict = ("**wins**" if wins else "loses") + ("" if edges else "; edges below frozen on a seed")
        per_seed = " / ".join(f"{f['score']:.2f}" for f in rows)
        lines.append(f"| {name} | {s['score']['mean']:.3f} ({s['score']['min']:.3f}) | {s['judged_target']['mean']:.3f} "
                     f"({s['judged_target']['min']:.3f}) | {s['shape_kept']['min']:.3f} | {s['edge_f1']['mean']:.3f} "
                     f"({s['edge_margin']['min']:+.3f}) | {per_seed} | {verdict} |")
        out.append({"preset": preset, "variant": name, "step": step, "summary": s, "seeds": rows, "verdict": verdict})
    return "\n".join(lines), out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("presets", nargs="+", choices=sorted(VARIANTS))
    p.add_argument("--seeds", default="0-3")
    p.add_argument("--variants", nargs="+", help="only these variants (the reference is always run)")
    p.add_argument("--out", type=Path, default=Path("runs/ablation"))
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--report", type=Path, help="write the tables here (markdown) and beside it as .json")
    p.add_argument("--no-train", action="store_true", help="only report what has finished")
    p.add_argument("--at", type=int, help="compare the variants at this step (default: each preset's budget)")
    args = p.parse_args()
    seeds = parse_seeds(args.seeds)
    plans = {}
    for preset in args.presets:
        names = list(VARIANTS[preset]) if not args.variants else ["reference"] + [v for v in args.variants if v != "reference"]
        plans[preset] = plan(preset, [n for n in names if n in VARIANTS[preset]], seeds, args.out)
    if not args.no_train:
        execute([r for runs in plans.values() for r in runs], jobs=args.jobs, threads=1, progress=False)
    texts, data = [], []
    for preset, runs in plans.items():
        text, rows = report(preset, runs, args.at)
        texts.append(text)
        data += rows
    print("\n\n".join(texts))
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text("\n\n".join(texts) + "\n")
        args.report.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
