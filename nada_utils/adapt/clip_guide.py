"""CLIP guidance: one or several CLIP models with weights, text and image directions, and losses.

`ClipGuide` is the model side of `losses`: it encodes images (differentiably) and texts, and keeps
text directions in a dict keyed by (source, target, templates). A changed prompt is a new key, so a
direction can never be stale (the reference cached the first one silently).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nada_utils.adapt.losses import DIRECTION_FLOOR, directional_loss, global_loss, unit_direction
from nada_utils.adapt.prompt_templates import CLASS_SLOT, IMAGENET_TEMPLATES
from nada_utils.errors import NadaError
from nada_utils.models.clip_arch import clip_preprocess, import_clip


def tokenize(texts: list[str], device) -> torch.Tensor:
    """CLIP tokens `[T, 77]`; a prompt longer than CLIP's 77 tokens is a clear error, never cut silently."""
    clip = import_clip()
    try:
        return clip.tokenize(texts).to(device)
    except RuntimeError:
        longest = max(texts, key=len)
        raise NadaError(f"prompt too long for CLIP (at most 77 tokens): {longest[:60]!r}...; shorten it") from None


def with_class(text: str, name: str) -> str:
    """`text` with its `{class}` slot filled by a class name ("an anime drawing of a {class}" -> "... of a bird")."""
    return text.replace(CLASS_SLOT, name)


def per_sample(vectors: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
    """A `[D]` vector as it is, or the rows of a per-class `[C, D]` one picked by `labels` `[N]` -> `[N, D]`."""
    if vectors.dim() == 1:
        return vectors
    if labels is None:
        raise ValueError("per-class directions need each image's class label")
    return vectors[labels.to(vectors.device)]


def prompt_texts(text: str, templates: bool = True) -> list[str]:
    """What CLIP reads for one prompt: the text in each of the 79 templates, or the bare text."""
    return [t.format(text) for t in IMAGENET_TEMPLATES] if templates else [text]


def check_prompts(source: str, target: str, *, templates: bool = True) -> tuple[str, str]:
    """Validate a source/target pair: non-empty, different, and short enough for CLIP in every template.

    Any text works, non-ASCII included (CLIP's tokenizer falls back to bytes); only length is limited.
    """
    source, target = (source or "").strip(), (target or "").strip()
    if not source or not target:
        raise NadaError("source and target texts must not be empty, e.g. --source photo --target sketch")
    if source == target:
        raise NadaError(f"source and target are the same text ({source!r}); the direction between them is zero")
    clip = import_clip()
    for flag, text in (("--source", source), ("--target", target)):
        try:
            clip.tokenize(prompt_texts(text, templates))
        except RuntimeError:
            shown = text if len(text) <= 40 else text[:40] + "..."
            where = ", in the longest of the 79 prompt templates" if templates else ""
            raise NadaError(f"{flag} {shown!r} is longer than CLIP's 77 tokens{where}; shorten it"
                            f"{' (or pass --no-templates)' if templates else ''}") from None
    return source, target


@dataclass
class GuideModel:
    """One CLIP model in the guide: its name, weight and input resolution."""

    name: str
    model: torch.nn.Module
    weight: float

    @property
    def resolution(self) -> int:
        return int(self.model.visual.input_resolution)


class ClipGuide:
    """Weighted CLIP models with cached text directions.

    Args:
        models: list of (name, CLIP model, weight); models are frozen, gradients flow to images.
        resize: how images are resized to CLIP's input, `clip_preprocess`'s `resize`.
        half: run the models in float16 as the official code's CLIP runs on a GPU (the models are converted
            in place); embeddings come back in float32 either way.
        floor: the directional loss's floor on |ΔI| (`losses.directional_loss`).
    """

    def __init__(self, models: list[tuple[str, torch.nn.Module, float]], *, resize: str = "antialias",
                 half: bool = False, floor: float = DIRECTION_FLOOR):
        if not models:
            raise NadaError("at least one CLIP model is needed")
        if half:  # as clip.load does on a GPU: float16 convolutions, linear layers and attention, float32 LayerNorms
            for _, m, _ in models:
                import_clip().model.convert_weights(m)
        self.models = [GuideModel(n, m, float(w)) for n, m, w in models]
        self.resize, self.half, self.floor = resize, half, floor
        self._text_cache: dict[tuple, torch.Tensor] = {}

    def clear_text_cache(self) -> None:
        """Forget every encoded text (the benchmark times encoding them)."""
        self._text_cache.clear()

    def encode_images(self, images: torch.Tensor) -> list[torch.Tensor]:
        """`[N, 3, H, W]` in [-1, 1] -> one `[N, D]` embedding per model (differentiable).

        Models with the same input resolution (ViT-B/32 and ViT-B/16: 224) share one resize.
        """
        inputs: dict[int, torch.Tensor] = {}
        for gm in self.models:
            if gm.resolution not in inputs:
                x = clip_preprocess(images, gm.resolution, resize=self.resize)
                inputs[gm.resolution] = x.half() if self.half else x
        return [gm.model.encode_image(inputs[gm.resolution]).float() for gm in self.models]

    @torch.no_grad()
    def encode_texts(self, gm: GuideModel, texts: list[str]) -> torch.Tensor:
        device = next(gm.model.parameters()).device
        return gm.model.encode_text(tokenize(texts, device)).float()

    def text_embedding(self, gm: GuideModel, text: str, *, templates: bool = True) -> torch.Tensor:
        """Unit text embedding `[D]`, averaged over the prompt templates when `templates`."""
        key = ("embedding", gm.name, text, templates)
        if key not in self._text_cache:
            texts = prompt_texts(text, templates)
            self._text_cache[key] = torch.nn.functional.normalize(self.encode_texts(gm, texts).mean(0), dim=-1)
        return self._text_cache[key]

    def text_directions(self, source: str, target: str, *, templates: bool = True,
                        class_names: list[str] | None = None) -> list[torch.Tensor]:
        """Unit ΔT `[D]` per model: per-template target - source embeddings, averaged, normalised.

        With `class_names`, prompts holding `{class}` give one direction per class: `[C, D]` per model,
        row c for the prompts with class c's name (a prompt without the slot is the same in every row).
        """
        if class_names is not None:
            per_class = [self.text_directions(with_class(source, n), with_class(target, n), templates=templates)
                         for n in class_names]
            return [torch.stack(rows) for rows in zip(*per_class)]
        source, target = check_prompts(source, target, templates=templates)
        out = []
        for gm in self.models:
            key = ("direction", gm.name, source, target, templates)
            if key not in self._text_cache:
                src = self.encode_texts(gm, prompt_texts(source, templates))
                tgt = self.encode_texts(gm, prompt_texts(target, templates))
                self._text_cache[key] = unit_direction(tgt, src)
            out.append(self._text_cache[key])
        return out

    @torch.no_grad()
    def image_directions(self, style_images: torch.Tensor, frozen_images: torch.Tensor) -> list[torch.Tensor]:
        """Image-guided ΔT per model: mean embedding of style images minus that of G_frozen samples."""
        return [unit_direction(s, f) for s, f in zip(self.encode_images(style_images), self.encode_images(frozen_images))]

    def directional(self, img_frozen: torch.Tensor, img_train: torch.Tensor, directions: list[torch.Tensor],
                    labels: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
        """Weighted directional loss over the models; returns (total, {model name: detached 0-d tensor}).

        Per-class directions (`[C, D]`) are picked per image by its class `labels` `[N]`. The terms
        stay tensors so that a training step never waits for the GPU before its backward.
        """
        directions = [per_sample(d, labels) for d in directions]
        with torch.no_grad():
            emb_frozen = self.encode_images(img_frozen)
        emb_train = self.encode_images(img_train)
        terms = {gm.name: directional_loss(f, t, d, floor=self.floor) for gm, f, t, d in zip(self.models, emb_frozen, emb_train, directions)}
        total = sum(gm.weight * terms[gm.name] for gm in self.models)
        return total, {k: v.detach() for k, v in terms.items()}

    def text_targets(self, text: str, *, templates: bool = True, class_names: list[str] | None = None) -> list[torch.Tensor]:
        """Unit text embedding `[D]` per model, the target of the global loss (`[C, D]` with `class_names`)."""
        if class_names is not None:
            return [torch.stack(rows) for rows in zip(*(self.text_targets(with_class(text, n), templates=templates)
                                                        for n in class_names))]
        return [self.text_embedding(gm, text, templates=templates) for gm in self.models]

    @torch.no_grad()
    def image_targets(self, style_images: torch.Tensor) -> list[torch.Tensor]:
        """Unit mean embedding `[D]` of style images per model, the global target of image-guided runs."""
        return [torch.nn.functional.normalize(torch.nn.functional.normalize(e, dim=-1).mean(0), dim=-1)
                for e in self.encode_images(style_images)]

    def global_(self, images: torch.Tensor, targets: list[torch.Tensor]) -> torch.Tensor:
        """Weighted global loss `1 - cos(E(image), target)` over the models; targets from text_/image_targets."""
        embs = self.encode_images(images)
        return sum(gm.weight * global_loss(e, t) for gm, e, t in zip(self.models, embs, targets))
