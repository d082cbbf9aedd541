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
import time
from pathlib import Path
from typing import Callable

from nada_utils.adapt.config import TrainConfig
from nada_utils.adapt.freezing import PHASES
from nada_utils.adapt.run_dir import check_resume, has_results, is_finished, read_config, read_evals, read_log, run_exists
from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_write_text, copy_atomic

# Metrics of a row, in the order tables show them; the first one present is the study's main metric.
METRICS = ("judged_target", "shape_kept", "edge_f1", "edge_f1_frozen", "gap_closed", "structure", "structure_frozen",
           "target_share", "clip_gain", "directional", "structure_clip", "loss_end")
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


def run_study(base: TrainConfig, strategies, root, *, progress: bool = True, log: Callable[[str], None] = print,
              sync_root=None) -> list[dict]:
    """Train `base` once per layer spec in `strategies` into `root/<slug>`; return one row per spec.

    A finished run whose config matches is reused; an unfinished one resumes. A run dir holding a
    different config is an error (choose another root). `sync_root`: mirror each run there (Drive).
    """
    from nada_utils.adapt.freezing import parse_layer_spec
    from nada_utils.adapt.trainer import train
    from nada_utils.models.generator_io import load_generator

    root = Path(root)
    strategies = list(strategies)
    if not strategies:
        raise NadaError("a study needs at least one layer strategy")
    G = load_generator(base.generator)  # check every spec now, not after hours of training
    for spec in strategies:
        parse_layer_spec(spec, G, include_torgb=base.include_torgb)
    del G
    rows = []
    for i, spec in enumerate(strategies, start=1):
        run_dir = root / slug(spec)
        cfg = TrainConfig.from_dict({**base.to_dict(), "layers": spec})
        sync_dir = Path(sync_root) / slug(spec) if sync_root else None
        resume = run_exists(run_dir, sync_dir)
        if has_results(run_dir):  # also before reusing a finished run: it must be this config's
            check_resume(read_config(run_dir), cfg)
        log(f"[{i}/{len(strategies)}] {spec}: " + ("resuming/reusing " if resume else "training ") + str(run_dir))
        t0 = time.time()
        if not is_finished(run_dir, cfg.steps):
            train(cfg, run_dir, resume=resume, progress=progress, log=log, sync_dir=sync_dir)
        row = summarize(run_dir, spec)
        row["wall_seconds"] = round(time.time() - t0, 1)
        rows.append(row)
    return rows


def main_metric(rows: list[dict]) -> str:
    """The study's headline metric: the first of METRICS that every row has."""
    for m in METRICS:
        if rows and all(r.get(m) is not None for r in rows):
            return m
    raise NadaError("the study rows share no metric")


def study_table(rows: list[dict]) -> str:
    """A markdown table of the rows: layers, every metric present, training seconds."""
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
        "json": atomic_write_text(out_dir / "study.json", json.dumps({"title": title, "rows": rows}, indent=2) + "\n"),
        "table": atomic_write_text(out_dir / "study.md", table),
        "plot": plot_study(rows, metric, out_dir / "study.png", title=f"{title}: {metric}" if title else metric),
    }
    return written


def export_results(rows: list[dict], out_dir) -> list[Path]:
    """Copy each run's final grid, metrics and config to `out_dir/<slug>/` (what `results/` holds)."""
    written = []
    for r in rows:
        run_dir, dest = Path(r["run_dir"]), Path(out_dir) / slug(r["layers"])
        pairs = [(Path(r["samples"]), dest / "frozen_vs_adapted.png")] if r.get("samples") else []
        pairs += [(run_dir / n, dest / n) for n in ("metrics.json", "config.json") if (run_dir / n).is_file()]
        written += [copy_atomic(src, dst) for src, dst in pairs]
    return written
