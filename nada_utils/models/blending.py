"""Domain interpolation: a generator whose weights are `alpha * G_train + (1 - alpha) * G_frozen`.

Both generators come from the same pretrained weights and differ only in the layers training moved,
so blending their weights walks from the source domain (alpha 0) to the adapted one (alpha 1) and,
with alpha > 1, past it. One blended copy is kept and updated in place: moving a slider costs a
few vector operations, not a model load.
"""

from __future__ import annotations

import copy

import torch

from nada_utils.errors import NadaError


class GeneratorBlend:
    """Holds G_frozen, G_train and one blended copy; `at(alpha)` returns the copy at that alpha."""

    def __init__(self, G_frozen, G_train):
        frozen, train = G_frozen.state_dict(), G_train.state_dict()
        if frozen.keys() != train.keys() or any(frozen[k].shape != train[k].shape for k in frozen):
            raise NadaError("these generators cannot be blended: their architectures differ "
                            "(an adapted generator blends only with the generator it was trained from)")
        self._frozen = {k: v.detach() for k, v in frozen.items() if v.is_floating_point()}
        self._train = {k: v.detach() for k, v in train.items() if v.is_floating_point()}
        self.G = copy.deepcopy(G_train).eval().requires_grad_(False)
        self._blended = {k: v for k, v in self.G.state_dict().items() if k in self._frozen}
        self.alpha: float | None = None

    @torch.no_grad()
    def at(self, alpha: float):
        """The blended generator at `alpha` (0: G_frozen, 1: G_train)."""
        alpha = float(alpha)
        if alpha != self.alpha:
            for k, out in self._blended.items():
                torch.lerp(self._frozen[k], self._train[k], alpha, out=out)
            self.alpha = alpha
        return self.G
