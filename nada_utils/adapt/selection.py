"""Layer selection chosen during training: the paper's `auto:K` and the gradient-norm `gradnorm:K`.

Both score candidates with the global CLIP loss of G_train towards the target text and keep the top K.
They use `torch.autograd.grad`, so no gradient is left on G_train's parameters for the training step.
"""

from __future__ import annotations

import torch

from nada_utils.adapt.freezing import layers_for_ws_indices, official_layers_for_ws_indices, parameters_of


def auto_select(G_train, ws: torch.Tensor, global_loss_fn, *, k: int, iters: int = 1, lr: float = 0.01,
                include_torgb: bool = False, official_table: bool = False) -> tuple[list[int], list[str]]:
    """The paper's adaptive selection: optimise W+ for the global loss, keep the K most-moved indices.

    Args:
        G_train: the generator being adapted.
        ws: `[N, num_ws, w_dim]` starting latents (from G_frozen's mapping; not modified).
        global_loss_fn: images `[N, 3, H, W]` -> scalar global CLIP loss towards the target.
        k: number of W+ indices to keep; iters / lr: plain SGD steps on W+.
        official_table: map indices to layers with the official code's table (`auto-official:K`).
    Returns:
        (the K W+ indices, highest score first; the layers that read them, in forward order).
    """
    start = ws.detach()
    w = start.clone().requires_grad_(True)
    for _ in range(iters):
        loss = global_loss_fn(G_train.synthesis(w))
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= lr * grad
    scores = (w.detach() - start).abs().mean(dim=-1).mean(dim=0)  # [num_ws]
    indices = torch.topk(scores, k).indices.tolist()
    if official_table:
        return indices, official_layers_for_ws_indices(G_train, indices)
    return indices, layers_for_ws_indices(G_train, indices, include_torgb=include_torgb)


def gradnorm_select(G_train, ws: torch.Tensor, global_loss_fn, *, k: int, candidates: list[str]) -> list[str]:
    """The K candidate layers with the largest gradient norm of the global loss, in forward order."""
    params = {name: [p for _, p in parameters_of(G_train, [name])] for name in candidates}
    flat = [p for ps in params.values() for p in ps]
    saved = [p.requires_grad for p in flat]
    for p in flat:
        p.requires_grad_(True)
    try:
        loss = global_loss_fn(G_train.synthesis(ws.detach()))
        grads = torch.autograd.grad(loss, flat, allow_unused=True)
    finally:
        for p, r in zip(flat, saved):
            p.requires_grad_(r)
    it = iter(grads)
    norms = {}
    for name, ps in params.items():
        sq = sum(float((g.detach() ** 2).sum()) for g in (next(it) for _ in ps) if g is not None)
        norms[name] = sq ** 0.5
    chosen = set(sorted(candidates, key=lambda n: -norms[n])[:k])
    return [n for n in candidates if n in chosen]


def select_layers(spec, G_train, ws: torch.Tensor, auto_latents, global_loss_fn, *, candidates: list[str], iters: int,
                  lr: float, include_torgb: bool) -> tuple[list[int], list[str]]:
    """One reselection for a dynamic layer spec; returns (W+ indices (auto only, else []), layers).

    `auto_latents()` gives the batch of ws that `auto:K` optimises (the reference draws a fresh one);
    `gradnorm:K` scores the step's own ws.
    """
    if spec.kind in ("auto", "auto-official"):
        return auto_select(G_train, auto_latents(), global_loss_fn, k=spec.k, iters=iters, lr=lr, include_torgb=include_torgb,
                           official_table=spec.kind == "auto-official")
    return [], gradnorm_select(G_train, ws, global_loss_fn, k=spec.k, candidates=candidates)
