"""How good is an adapted generator, and which checkpoint to keep.

Metrics over held-out z (the same `n` latents for every checkpoint, drawn from their own seed, never
from training's sampler), each computed for both generators where that means something:
- `clip_target_adapted` / `clip_target_frozen`: mean cosine of the images' CLIP embeddings to the
  target (the text, or the style images); `clip_gain` is their difference;
- `directional`: mean `cos(ΔI, ΔT)`, the training objective on latents training never saw;
- `diversity_adapted` / `diversity_frozen`: mean pairwise `1 - cos` between the images' embeddings;
  `diversity_ratio` = adapted / frozen (below 1: the adapted generator draws more alike images);
- `structure_clip`: mean CLIP image-image cosine of G_frozen(z) and G_train(z) (same picture?);
- with `faces=True`, dlib face-descriptor distances (`face_descriptors`, an optional extra);
- with a config that names ground truth (the mini world), the judge's `judged_target` and `shape_kept`,
  `edge_f1` and `gap_closed` against the true target images (docs/MINI_WORLD.md).
With several CLIP models each CLIP metric is their plain mean; `per_clip` keeps each model's values.
A judge CLIP the run did not train with is the fairer judge: `evaluate --clip`.

`best_step` is the documented rule that answers "which checkpoint do I keep" (see its docstring).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F

from nada_utils.models.rendering import class_input, cycle_classes, held_out_z

CHUNK = 8  # images rendered at once (32 images of 1024 px at a time would need gigabytes)
RULE = ("the last checkpoint: no rule over the CLIP metrics (similarity, direction, diversity, structure) picked a "
        "better one often enough in the mini world's seed studies (docs/BENCHMARKS.md)")
CLIP_KEYS = ("clip_target_adapted", "clip_target_frozen", "clip_gain", "directional", "diversity_adapted",
             "diversity_frozen", "diversity_ratio", "structure_clip")


def mean_pairwise_distance(emb: torch.Tensor) -> float:
    """Mean `1 - cos` over all pairs i < j of the rows of `emb` `[N, D]` (0 if N < 2)."""
    n = emb.shape[0]
    if n < 2:
        return 0.0
    e = F.normalize(emb.float(), dim=-1)
    sims = e @ e.T
    return float((1 - sims).sum() / (n * (n - 1)))  # the diagonal contributes 0


def clip_metrics(emb_frozen: torch.Tensor, emb_adapted: torch.Tensor, direction: torch.Tensor, target: torch.Tensor) -> dict:
    """The CLIP metrics for one model from `[N, D]` embeddings, the unit ΔT and the unit target: `[D]`,
    or `[N, D]` (each image's own, for per-class prompts)."""
    nf, na = F.normalize(emb_frozen.float(), dim=-1), F.normalize(emb_adapted.float(), dim=-1)
    target, direction = target.float().to(nf.device), direction.float().to(nf.device)
    out = {"clip_target_adapted": float((na * target).sum(-1).mean()),
           "clip_target_frozen": float((nf * target).sum(-1).mean())}
    out["clip_gain"] = out["clip_target_adapted"] - out["clip_target_frozen"]
    out["directional"] = float(F.cosine_similarity(na - nf, direction.expand_as(na), dim=-1, eps=1e-8).mean())
    out["diversity_adapted"] = mean_pairwise_distance(na)
    out["diversity_frozen"] = mean_pairwise_distance(nf)
    out["diversity_ratio"] = out["diversity_adapted"] / max(out["diversity_frozen"], 1e-12)
    out["structure_clip"] = float(F.cosine_similarity(nf, na, dim=-1).mean())
    return out


class Evaluator:
    """Scores generators against one frozen generator with fixed held-out z, CLIP models and targets.

    Args:
        G_frozen: the generator the run started from.
        guide: a `ClipGuide` (the run's own, or other judge models).
        directions, targets: unit ΔT and unit target embedding per guide model.
        n: held-out latents; faces: add dlib face-descriptor distances; ground_truth: a config's
            `WORLD:DOMAIN`, scored with `ground_truth.evaluate_ground_truth`.
    """

    def __init__(self, G_frozen, guide, directions, targets, *, n: int = 32, faces: bool = False,
                 ground_truth: str | None = None, classes: list[int] | None = None):
        self.G_frozen, self.guide, self.n = G_frozen, guide, n
        self.faces, self.ground_truth = faces, ground_truth
        self.z = held_out_z(n, G_frozen.z_dim)
        # A conditional generator's held-out latents go through its classes in turn; per-class
        # directions and targets (`[C, D]`) become each latent's own.
        self.classes, self.labels = classes, cycle_classes(classes, n)
        self.directions = [d[self.labels] if d.dim() == 2 else d for d in directions]
        self.targets = [t[self.labels] if t.dim() == 2 else t for t in targets]
        self._frozen_emb = None  # G_frozen's embeddings never change: computed once

    @staticmethod
    def _images(G, z, labels) -> torch.Tensor:
        return G(z, class_input(G, labels, z.device), noise_mode="const").clamp(-1, 1)

    def _embed(self, G, z, labels) -> list[torch.Tensor]:
        return [e.float() for e in self.guide.encode_images(self._images(G, z, labels))]

    def _scores(self, frozen: list, adapted: list, rows) -> tuple[dict, dict]:
        """(metrics averaged over the CLIP models, {model: metrics}) of the latents `rows` selects."""
        def pick(x):
            return x if x.dim() == 1 else x[rows]

        per_clip = {gm.name: clip_metrics(f[rows], a[rows], pick(d), pick(t)) for gm, f, a, d, t in
                    zip(self.guide.models, frozen, adapted, self.directions, self.targets)}
        return {k: sum(m[k] for m in per_clip.values()) / len(per_clip) for k in CLIP_KEYS}, per_clip

    @torch.no_grad()
    def __call__(self, G_train) -> dict:
        device = next(G_train.parameters()).device
        chunks = [(self.z[i:i + CHUNK].to(device), None if self.labels is None else self.labels[i:i + CHUNK])
                  for i in range(0, self.n, CHUNK)]
        if self._frozen_emb is None:
            parts = [self._embed(self.G_frozen, z, y) for z, y in chunks]
            self._frozen_emb = [torch.cat(p) for p in zip(*parts)]
        parts = [self._embed(G_train, z, y) for z, y in chunks]
        adapted = [torch.cat(p) for p in zip(*parts)]
        row, per_clip = self._scores(self._frozen_emb, adapted, slice(None))
        row["n"] = self.n
        if len(per_clip) > 1:
            row["per_clip"] = per_clip
        if self.labels is not None:  # every metric for each class too (classes with 2+ latents: diversity needs pairs)
            row["per_class"] = {str(c): {**self._scores(self._frozen_emb, adapted, self.labels == c)[0],
                                         "n": int((self.labels == c).sum())}
                                for c in self.labels.unique().tolist() if (self.labels == c).sum() >= 2}
        if self.faces:
            from nada_utils.measure.face_descriptors import face_descriptor_distances, summarize

            distances = [d for z, y in chunks for d in face_descriptor_distances(
                self._images(self.G_frozen, z, y).cpu(), self._images(G_train, z, y).cpu())]
            row.update(summarize(distances))
        if self.ground_truth:
            from nada_utils.measure.ground_truth import evaluate_ground_truth

            truth = evaluate_ground_truth(self.ground_truth, self.G_frozen, G_train, self.classes)
            row.update({k: v for k, v in truth.items() if isinstance(v, float)})
            if "per_class" in truth:
                row["ground_truth_per_class"] = truth["per_class"]
        return row


def best_step(rows: list[dict]) -> tuple[int | None, str]:
    """The checkpoint to keep, and why: the last one evaluated.

    The authors advise keeping the checkpoint before the result "overshoots". Rules that look for it
    in the CLIP metrics a run can see (the largest gain or direction, the latest near the largest, gain
    against structure, the earlier rule of "near the largest gain, most like the frozen images") were
    set against the mini world's judge on the seed studies' runs: none kept a checkpoint within 0.03 of
    the run's best in 80% of runs without falling more than 0.05 below the last checkpoint in some,
    and the earlier rule was the worst of them (docs/BENCHMARKS.md). So the rule is the last checkpoint,
    and `evaluation.png` shows every checkpoint's metrics for a person to judge an overshoot.
    """
    steps = sorted(r["step"] for r in rows if r.get("clip_gain") is not None)
    if not steps:
        return None, "no evaluated checkpoints"
    return steps[-1], f"the last checkpoint (step {steps[-1]} of {len(steps)} evaluated); {RULE.partition(': ')[2]}"


def evaluation_summary(rows: list[dict], checkpoints=None, judge=None) -> dict:
    """All evaluations of a run, the best checkpoint and the rule that chose it (evaluation.json).

    `checkpoints`: the run's checkpoint folder, to name the best checkpoint's file if it is still there."""
    step, why = best_step(rows)
    best = {"step": step, "why": why}
    if checkpoints is not None and step is not None:
        path = Path(checkpoints) / f"step_{step:06d}.pt"
        best["checkpoint"] = str(path) if path.is_file() else None
    out = {"best": best, "rule": RULE, "rows": sorted(rows, key=lambda r: r["step"])}
    if judge:
        out["judge"] = judge
    return out


def write_evaluation(run_dir, rows: list[dict], *, checkpoints=None, judge=None) -> tuple[dict, list]:
    """Write RUN_DIR/evaluation.json and the plot of the metrics over steps, evaluation.png.

    `checkpoints`: the run's checkpoint folder (see `evaluation_summary`).
    Returns (the summary written, the paths written)."""
    import json

    from nada_utils.fileio import atomic_write_text
    from nada_utils.measure.plots import plot_evaluation

    run_dir = Path(run_dir)
    summary = evaluation_summary(rows, checkpoints, judge)
    paths = [atomic_write_text(run_dir / "evaluation.json", json.dumps(summary, indent=2) + "\n")]
    if rows:
        paths.append(plot_evaluation(summary["rows"], summary["best"]["step"], run_dir / "evaluation.png",
                                     title=run_dir.name))
    return summary, paths


def evaluation_table(rows: list[dict], best: int | None = None, *, key: str = "step") -> str:
    """A plain-text table of the evaluations, one line per step (or per `key`); the best one is marked."""
    columns = [k for k in ("clip_gain", "directional", "diversity_ratio", "structure_clip", "face_distance",
                           "judged_target", "shape_kept", "edge_f1", "gap_closed")
               if any(r.get(k) is not None for r in rows)]
    lines = [f"{key:<10}" + "".join(f"{c:>17}" for c in columns)]
    for r in sorted(rows, key=lambda r: r[key]):
        cells = "".join(f"{r[c]:>17.4f}" if isinstance(r.get(c), float) else f"{'-':>17}" for c in columns)
        lines.append(f"{r[key]:<8}{'*' if r[key] == best else ' '} {cells}")
    return "\n".join(lines)


def class_table(row: dict) -> str | None:
    """The per-class evaluation of one checkpoint (conditional generators) as a table, or None."""
    per_class = row.get("per_class")
    if not per_class:
        return None
    return evaluation_table([{"class": int(c), **m} for c, m in per_class.items()], key="class")
