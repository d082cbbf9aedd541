"""Plots written as PNG files: the loss curve of a run, and a study's metrics against k.

matplotlib's object API (no pyplot) keeps these free of global figure state, so they work the
same in a notebook, a script and a test. Each function returns the PNG's path.
"""

from __future__ import annotations

from pathlib import Path

from nada_utils.fileio import atomic_open


def _figure(width: float = 6.0, height: float = 3.5):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=100, layout="constrained")


def _save(fig, path) -> Path:
    with atomic_open(path, "wb") as f:
        fig.savefig(f, format="png")
    return Path(path)


def smooth(values: list[float], window: int) -> list[float]:
    """Trailing moving average (the first points average what there is)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_losses(records: list[dict], out, *, title: str = "") -> Path:
    """Loss per step of a run's log records (and each CLIP model's directional term), raw and smoothed."""
    fig = _figure()
    ax = fig.add_subplot()
    steps = [r["step"] for r in records]
    window = max(1, len(records) // 20)
    ax.plot(steps, [r["loss"] for r in records], color="0.8", linewidth=1, label="loss")
    ax.plot(steps, smooth([r["loss"] for r in records], window), color="C0", label=f"loss, mean of {window}")
    names = list(records[0]["directional"]) if records and len(records[0]["directional"]) > 1 else []
    for i, name in enumerate(names, start=1):
        ax.plot(steps, smooth([r["directional"][name] for r in records], window), color=f"C{i}", linewidth=1,
                label=f"directional {name}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    if records:
        ax.legend(fontsize=8)
    return _save(fig, out)


def consecutive_runs(points: list[tuple[int, float]]) -> list[list[tuple[int, float]]]:
    """(K, value) points sorted by K and split where a K is missing: a study plot joins neighbouring K
    only, since a line across a K that was not run would draw a value never measured."""
    runs: list[list[tuple[int, float]]] = []
    for point in sorted(points):
        if runs and point[0] == runs[-1][-1][0] + 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


def spread_points(rows: list[dict], metric: str) -> dict[str, tuple[float, float, float]]:
    """Per layer spec, (mean, min, max) of `metric` over its rows (one row per seed; min = max for one)."""
    values: dict[str, list[float]] = {}
    for r in rows:
        if r.get(metric) is not None:
            values.setdefault(r["layers"], []).append(r[metric])
    return {spec: (sum(v) / len(v), min(v), max(v)) for spec, v in values.items()}


def plot_study(rows: list[dict], metric: str, out, *, title: str = "") -> Path:
    """`metric` against k for each family of k-strategies (last:K, auto:K, ...); fixed strategies as lines.

    With several seeds per strategy, the mean, with a bar (a band for fixed strategies) from the
    worst seed to the best; a marker only at the K that ran."""
    fig = _figure()
    ax = fig.add_subplot()
    families: dict[str, list[tuple[int, float]]] = {}
    fixed = []
    points = spread_points(rows, metric)
    seeded = any(lo != hi for _, lo, hi in points.values()) or any("seed" in r for r in rows)
    for spec, (mean, lo, hi) in points.items():
        family, sep, k = spec.partition(":")
        if sep and k.isdigit():
            families.setdefault(family, []).append((int(k), spec))
        else:
            fixed.append((spec, mean, lo, hi))
    for i, (family, ks) in enumerate(sorted(families.items())):
        for j, run in enumerate(consecutive_runs(ks)):
            means = [points[spec][0] for _, spec in run]
            errors = [[points[spec][0] - points[spec][1] for _, spec in run],
                      [points[spec][2] - points[spec][0] for _, spec in run]]
            ax.errorbar([k for k, _ in run], means, yerr=errors if seeded else None, marker="o", color=f"C{i}",
                        capsize=3, label=(f"{family}:K" + (" (mean, worst-best seed)" if seeded else "")) if j == 0 else None)
    for j, (name, mean, lo, hi) in enumerate(fixed):
        color = f"C{len(families) + j}"
        ax.axhline(mean, linestyle="--", linewidth=1, color=color,
                   label=name + (" (mean; band: worst to best seed)" if hi > lo else ""))
        if hi > lo:
            ax.axhspan(lo, hi, color=color, alpha=0.12)
    ks = sorted({k for points_k in families.values() for k, _ in points_k})
    if ks:
        ax.set_xticks(ks)  # the K that ran, and only those
    ax.set_xlabel("K")
    ax.set_ylabel(metric + (" (mean over seeds)" if seeded else ""))
    ax.set_title(title or metric)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, out)


EVALUATION_PANELS = (  # (metric, its frozen baseline or None, label)
    ("clip_target_adapted", "clip_target_frozen", "CLIP similarity to the target"),
    ("directional", None, "directional agreement cos(ΔI, ΔT)"),
    ("diversity_ratio", None, "diversity, adapted / frozen"),
    ("structure_clip", None, "structure: CLIP sim. frozen-adapted"),
    ("judged_target", "judged_target_frozen", "ground truth: judged the target domain"),
    ("shape_kept", "shape_kept_frozen", "ground truth: shape kept (judge)"),
    ("edge_f1", "edge_f1_frozen", "ground truth: edge F1 against the true target"),
    ("gap_closed", None, "ground truth: gap closed"),
    ("face_distance", None, "face descriptor distance"),
)


def plot_evaluation(rows: list[dict], best: int | None, out, *, title: str = "",
                    collapsed_below: float | None = None) -> Path:
    """One small panel per evaluation metric over steps; the chosen checkpoint is a dashed line, and
    the diversity ratio under which a checkpoint counts as collapsed (`collapsed_below`) a dotted one."""
    panels = [p for p in EVALUATION_PANELS if any(r.get(p[0]) is not None for r in rows)]
    cols = 2
    fig = _figure(8.0, 2.4 * ((len(panels) + cols - 1) // cols))
    steps = [r["step"] for r in rows]
    for i, (metric, baseline, label) in enumerate(panels):
        ax = fig.add_subplot((len(panels) + cols - 1) // cols, cols, i + 1)
        ax.plot(steps, [r.get(metric) for r in rows], marker="o", markersize=3, color="C0", label="adapted")
        if baseline:
            ax.plot(steps, [r.get(baseline) for r in rows], color="0.6", linestyle=":", label="frozen")
            ax.legend(fontsize=7)
        if best is not None:
            ax.axvline(best, color="C3", linestyle="--", linewidth=1)
        if metric == "diversity_ratio" and collapsed_below is not None:
            ax.axhline(collapsed_below, color="0.6", linestyle=":", label="collapsed below")
            ax.legend(fontsize=7)
        ax.set_title(label, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: evaluation over steps (dashed: the checkpoint to keep, step {best})", fontsize=10)
    return _save(fig, out)
