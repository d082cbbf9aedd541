"""Block importance: the same run, on the same budget, once per layer strategy, and its measurements.

`run_study(base, strategies, root)` trains `base` with each layer spec into `root/<spec>/` (a
finished run is reused, an interrupted one resumed, so a study survives disconnects) and returns one
row per strategy: the ground-truth metrics when the config names some (the mini world's
`gap_closed`, ...), the loss at the end, and the final frozen-vs-adapted grid. `write_study` saves
the table, the rows as JSON and a plot of the main metric against K. The CLI (`study`) and
`notebooks/block_importance.ipynb` both call these.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable

from nada_utils.adapt.config import TrainConfig
from nada_utils.adapt.layer_specs import PHASES
from nada_utils.adapt.run_dir import is_finished, read_config, read_evals, read_log
from nada_utils.errors import NadaError
from nada_utils.experiments.runs import PlannedRun, execute
from nada_utils.fileio import atomic_write_text, copy_atomic

# Metrics of a row, in the order tables show them; the first one present is the study's main metric.
METRICS = ("judged_target", "shape_kept", "edge_f1", "edge_f1_frozen", "gap_closed", "clip_gain", "directional",
           "structure_clip", "loss_end")
# From the run's last evaluation (eval.jsonl), the CLIP metrics a study without ground truth is judged by.
EVAL_METRICS = ("clip_gain", "directional", "structure_clip")


def default_strategies(G, *, fast: bool = False) -> list[str]:
    """last:K for every K, the reference's phases, all, auto:K and gradnorm:K; `fast`: one of each kind.
    StyleGAN3 has no phases (they are the official code's StyleGAN2 sets)."""
    blocks = len(G.synthesis_blocks())
    phases = [f"phase:{p}" for p in PHASES if p != "all"] if G.has_official_layer_sets else []
    if fast:
        return ["last:1", "last:2", *phases[:1], "all", "auto:2", "gradnorm:2"]
    ks = [k for k in (2, 4, 8) if k <= G.num_ws]
    return ([f"last:{k}" for k in range(1, blocks + 1)] + phases + ["all"]
            + [f"auto:{k}" for k in ks] + [f"gradnorm:{k}" for k in ks])


def study_strategies(base: TrainConfig, text: str = "", *, fast: bool = False) -> list[str]:
    """Layer specs from `text` (separated by spaces or ";"), or `default_strategies` for base's generator."""
    specs = [s for s in text.replace(";", " ").split() if s]
    if specs:
        return specs
    from nada_utils.models.generator_io import load_generator

    return default_strategies(load_generator(base.generator), fast=fast)


def slug(spec: str) -> str:
    """A folder name for a layer spec: "last:3" -> "last-3", "layers:convs.1,convs.2" -> "layers-convs.1-convs.2"."""
    return spec.replace(":", "-").replace(",", "-").replace("/", "-")


def _final_sample(run_dir: Path) -> Path | None:
    found = sorted((run_dir / "samples").glob("step_*.png"))
    return found[-1] if found else None


def summarize(run_dir, spec: str | None = None) -> dict:
    """One study row from a finished run dir: its metrics, end loss, wall time and final grid."""
    run_dir = Path(run_dir)
    records = read_log(run_dir)
    tail = records[-max(1, len(records) // 10):]
    samples = _final_sample(run_dir)
    row = {"layers": spec or read_config(run_dir).layers, "run_dir": str(run_dir),
           "loss_end": sum(r["loss"] for r in tail) / len(tail) if tail else None,
           "train_seconds": round(sum(r.get("seconds", 0.0) for r in records), 1),
           "samples": str(samples) if samples else None}
    evals = read_evals(run_dir)
    if evals:  # the final checkpoint's evaluation; per class too for conditional generators
        last = max(evals, key=lambda r: r["step"])
        row.update({k: last[k] for k in EVAL_METRICS if isinstance(last.get(k), float)})
        if last.get("per_class"):
            row["per_class"] = {c: {k: m[k] for k in EVAL_METRICS if k in m} for c, m in last["per_class"].items()}
    if (run_dir / "metrics.json").is_file():
        row.update({k: v for k, v in json.loads((run_dir / "metrics.json").read_text()).items() if isinstance(v, float)})
    return row


def plan_study(base: TrainConfig, strategies, root, *, seeds=None, sync_root=None) -> list[PlannedRun]:
    """One `PlannedRun` per layer spec (and per seed): `root/<slug>/`, or `root/<slug>/seed-N/` with `seeds`."""
    runs = []
    for spec in strategies:
        for seed in (None,) if seeds is None else seeds:
            rel = Path(slug(spec)) if seed is None else Path(slug(spec)) / f"seed-{seed}"
            settings = {**base.to_dict(), "layers": spec, **({} if seed is None else {"seed": int(seed)})}
            labels = {"layers": spec, **({} if seed is None else {"seed": int(seed)})}
            runs.append(PlannedRun(root / rel, TrainConfig.from_dict(settings), labels,
                                   Path(sync_root) / rel if sync_root else None))
    return runs


def gather(runs: list[PlannedRun]) -> list[dict]:
    """The study rows of the finished runs of a plan, read from their run dirs (labels first)."""
    return [{**summarize(r.run_dir, r.labels.get("layers")), **r.labels}
            for r in runs if is_finished(r.run_dir, r.cfg.steps)]


def run_study(base: TrainConfig, strategies, root, *, seeds=None, jobs: int = 1, threads: int | None = None,
              progress: bool = True, log: Callable[[str], None] = print, sync_root=None,
              mirror: Callable | None = None) -> list[dict]:
    """Train `base` once per layer spec in `strategies` (and per seed in `seeds`) into `root`; one row per run.

    A finished run whose config matches is reused; an unfinished one resumes. A run dir holding a
    different config is an error (choose another root). `jobs`, `threads`: see `runs.execute`.
    `sync_root`: mirror each run there (Drive), with `mirror` (`drive_sync.mirrored`).
    """
    from nada_utils.adapt.freezing import parse_layer_spec
    from nada_utils.models.generator_io import load_generator

    root = Path(root)
    strategies = list(strategies)
    if not strategies:
        raise NadaError("a study needs at least one layer strategy")
    if seeds is not None and not list(seeds):
        raise NadaError("--seeds names no seed; give e.g. 0-7 or 0,1,2")
    G = load_generator(base.generator)  # check every spec now, not after hours of training
    for spec in strategies:
        parse_layer_spec(spec, G, include_torgb=base.include_torgb)
    del G
    runs = plan_study(base, strategies, root, seeds=seeds, sync_root=sync_root)
    execute(runs, jobs=jobs, threads=threads, progress=progress, log=log, mirror=mirror)
    return gather(runs)


def seed_summary(rows: list[dict]) -> list[dict]:
    """Per layer spec (in the rows' order), each metric's mean, min, max and spread (max - min) over seeds.

    Returns `[{"layers": spec, "seeds": [...], "metrics": {metric: {"mean", "min", "max", "spread"}}}]`."""
    specs: dict[str, list[dict]] = {}
    for r in rows:
        specs.setdefault(r["layers"], []).append(r)
    out = []
    for spec, group in specs.items():
        stats = {}
        for m in (*METRICS, "train_seconds"):
            values = [r[m] for r in group if isinstance(r.get(m), (int, float))]
            if values:
                stats[m] = {"mean": sum(values) / len(values), "min": min(values), "max": max(values),
                            "spread": max(values) - min(values)}
        out.append({"layers": spec, "seeds": [r.get("seed") for r in group], "metrics": stats})
    return out


def seed_tables(rows: list[dict]) -> str:
    """Markdown: an overview (each metric's mean and min over seeds, per spec), then a table per spec
    with every metric's mean, min, max, spread and each seed's value."""
    summary = seed_summary(rows)
    metrics = [m for m in METRICS if any(m in s["metrics"] for s in summary)]
    lines = ["| layers | seeds | " + " | ".join(f"{m} mean (min)" for m in metrics) + " |",
             "|---" * (len(metrics) + 2) + "|"]
    for s in summary:
        cells = [f"{s['metrics'][m]['mean']:.3f} ({s['metrics'][m]['min']:.3f})" if m in s["metrics"] else ""
                 for m in metrics]
        lines.append(f"| `{s['layers']}` | {len(s['seeds'])} | " + " | ".join(cells) + " |")
    for s in summary:
        group = [r for r in rows if r["layers"] == s["layers"]]
        seeds = [r.get("seed") for r in group]
        lines += ["", f"`{s['layers']}`, seeds {', '.join(str(x) for x in seeds)}:", "",
                  "| metric | mean | min | max | spread | " + " | ".join(f"seed {x}" for x in seeds) + " |",
                  "|---" * (len(seeds) + 5) + "|"]
        for m, st in s["metrics"].items():
            each = [f"{r[m]:.3f}" if isinstance(r.get(m), (int, float)) else "" for r in group]
            lines.append(f"| {m} | {st['mean']:.3f} | {st['min']:.3f} | {st['max']:.3f} | {st['spread']:.3f} | "
                         + " | ".join(each) + " |")
    return "\n".join(lines)


def main_metric(rows: list[dict]) -> str:
    """The study's headline metric: the first of METRICS that every row has."""
    for m in METRICS:
        if rows and all(r.get(m) is not None for r in rows):
            return m
    raise NadaError("the study rows share no metric")


def study_table(rows: list[dict]) -> str:
    """A markdown table of the rows: layers, every metric present, training seconds (`seed_tables` when
    the rows come from several seeds)."""
    if any("seed" in r for r in rows):
        return seed_tables(rows)
    metrics = [m for m in METRICS if any(r.get(m) is not None for r in rows)]
    lines = ["| layers | " + " | ".join(metrics) + " | train s |", "|---" * (len(metrics) + 2) + "|"]
    for r in rows:
        cells = [f"{r[m]:.3f}" if r.get(m) is not None else "" for m in metrics]
        lines.append(f"| `{r['layers']}` | " + " | ".join(cells) + f" | {r['train_seconds']:.1f} |")
    return "\n".join(lines)


def class_names_of(cfg: TrainConfig) -> list[str] | None:
    """The names of a conditional generator's classes: the config's, else its registry entry's, else None."""
    from nada_utils.weights.registry import REGISTRY

    if cfg.class_names:
        return list(cfg.class_names)
    spec = REGISTRY.get(cfg.generator)
    return list(spec.class_names) if spec is not None and spec.class_names else None


def class_study_table(rows: list[dict], metric: str = "clip_gain", names: list[str] | None = None) -> str | None:
    """Conditional generators: a markdown table of `metric` per layer strategy (rows) and class (columns), or None."""
    classes = sorted({int(c) for r in rows for c in r.get("per_class") or {}})
    if not classes:
        return None
    heads = [names[c] if names and c < len(names) else f"class {c}" for c in classes]
    lines = [f"| layers ({metric}) | " + " | ".join(heads) + " |", "|---" * (len(classes) + 1) + "|"]
    for r in rows:
        per = r.get("per_class") or {}
        cells = [f"{per[str(c)][metric]:.3f}" if metric in per.get(str(c), {}) else "" for c in classes]
        lines.append(f"| `{r['layers']}` | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_study(rows: list[dict], out_dir, *, title: str = "", paths: bool = True,
                class_names: list[str] | None = None) -> dict[str, Path]:
    """study.json, study.md and study.png (the main metric against K) in `out_dir`; returns their paths.

    `paths=False` leaves the machine's run paths out of study.json (for files that are committed).
    """
    from nada_utils.measure.plots import plot_study

    out_dir = Path(out_dir)
    if not paths:
        rows = [{k: v for k, v in r.items() if k not in ("run_dir", "samples")} for r in rows]
    metric = main_metric(rows)
    per_class = class_study_table(rows, names=class_names)
    table = (f"# {title}\n\n" if title else "") + study_table(rows) + "\n" + (f"\nPer class:\n\n{per_class}\n" if per_class else "")
    written = {
        "json": atomic_write_text(out_dir / "study.json", json.dumps(
            {"title": title, "rows": rows, **({"seeds": seed_summary(rows)} if any("seed" in r for r in rows) else {})},
            indent=2) + "\n"),
        "table": atomic_write_text(out_dir / "study.md", table),
        "plot": plot_study(rows, metric, out_dir / "study.png", title=f"{title}: {metric}" if title else metric),
    }
    return written


def export_results(rows: list[dict], out_dir) -> list[Path]:
    """Copy each run's final grid, metrics and config to `out_dir/<slug>/` (`<slug>/seed-N/` for a seed
    study; what `results/` holds)."""
    written = []
    for r in rows:
        run_dir, dest = Path(r["run_dir"]), Path(out_dir) / slug(r["layers"])
        if r.get("seed") is not None:
            dest = dest / f"seed-{r['seed']}"
        pairs = [(Path(r["samples"]), dest / "frozen_vs_adapted.png")] if r.get("samples") else []
        pairs += [(run_dir / n, dest / n) for n in ("metrics.json", "config.json") if (run_dir / n).is_file()]
        written += [copy_atomic(src, dst) for src, dst in pairs]
    return written
