"""Widgets for the knobs of a run. They fill the same `TrainConfig` that the CLI builds.

`TrainControls(cfg)` shows the prompts, the layer strategy and its K, the steps and the learning
rate (and, for a class-conditional generator with named classes, the classes to train on), starting
from `cfg`; `controls.config()` returns `cfg` with the widget values applied, checked by
`TrainConfig` itself. Everything else in `cfg` (generator, CLIP models, batch...) is kept.
"""

from __future__ import annotations

from nada_utils.adapt.checks import check_config
from nada_utils.adapt.config import TrainConfig, make_config
from nada_utils.adapt.layer_specs import LAYER_SPECS, PHASES, TAKES_K
from nada_utils.adapt.prompt_templates import CLASS_SLOT
from nada_utils.errors import NadaError


def _strategies() -> list[tuple[str, str]]:
    """The dropdown's (label, value) pairs, from the one list of layer specs; values ending in ":" take K.
    `layers:A,B` needs names typed in, so the dropdown leaves it to the CLI (and `cfg.layers`)."""
    options = []
    for form, meaning in LAYER_SPECS:
        kind = form.partition(":")[0]
        if kind == "phase":
            options += [(f"phase:{p}: one of the official code's manual sets", f"phase:{p}") for p in PHASES if p != "all"]
        elif kind in TAKES_K:
            options.append((f"{form}: {meaning}", f"{kind}:"))
        elif kind != "layers":
            options.append((f"{form}: {meaning}", form))
    return options


STRATEGIES = _strategies()


def form_config(preset: str, *, reference: bool = False, generator: str = "", source_text: str = "",
                target_text: str = "", strategy: str = "", k: int = 0, steps: int = 0, lr: float = 0.0) -> TrainConfig:
    """The settings form's config: the preset's, where each field the user filled in replaces the preset's
    value and an empty one (a blank text, 0) keeps it. `strategy` and `k` make the layer spec: a strategy
    that takes K without one keeps the preset's K where its spec has the same kind (else 4); `k` alone
    changes the preset's own K."""
    base = make_config(preset, reference=reference)
    kind, _, preset_k = base.layers.partition(":")
    if not strategy and k and kind in TAKES_K:
        strategy = kind
    layers = None
    if strategy:
        strategy = strategy.rstrip(":")
        layers = layer_spec(strategy, k or (int(preset_k) if strategy == kind and preset_k.isdigit() else 4)) \
            if strategy in TAKES_K else strategy
    return make_config(preset, reference=reference, generator=generator.strip() or None,
                       source_text=source_text.strip() or None, target_text=target_text.strip() or None,
                       layers=layers, steps=int(steps) or None, lr=float(lr) or None)


def layer_spec(strategy: str, k: int) -> str:
    """The layer spec of a strategy name and K: ("last", 3) -> "last:3"; ("all", 3) -> "all"."""
    strategy = strategy.rstrip(":")
    if strategy in TAKES_K:
        if int(k) < 1:
            raise NadaError(f"K must be >= 1 for {strategy}:K, got {k}")
        return f"{strategy}:{int(k)}"
    return strategy


def split_spec(spec: str) -> tuple[str, int | None]:
    """"last:3" -> ("last:", 3); "all" -> ("all", None); used to start the widgets from a config."""
    kind, _, arg = spec.partition(":")
    if kind in TAKES_K and arg.isdigit():
        return f"{kind}:", int(arg)
    return spec, None


class TrainControls:
    """Prompt, strategy, K, steps and lr widgets over a base config; displays as one box."""

    def __init__(self, cfg: TrainConfig, *, k: int = 4, k_max: int = 18, layers: bool = True):
        import ipywidgets as w

        self.base = cfg
        self.with_layers = layers  # False (a study sweeps the layers itself): the config keeps cfg.layers
        strategy, spec_k = split_spec(cfg.layers)
        options = list(STRATEGIES)
        if strategy not in [v for _, v in options]:  # layers:..., or a spec the dropdown does not list
            options.append((strategy, strategy))
        style = {"description_width": "7em"}
        layout = w.Layout(width="32em")
        self.source = w.Text(cfg.source_text, description="source text", style=style, layout=layout)
        self.target = w.Text(cfg.target_text, description="target text", style=style, layout=layout)
        self.strategy = w.Dropdown(options=options, value=strategy, description="layers", style=style, layout=layout)
        self.k = w.IntSlider(value=min(spec_k or k, k_max), min=1, max=k_max, description="K", style=style)
        self.steps = w.BoundedIntText(value=cfg.steps, min=1, max=1_000_000, description="steps", style=style)
        self.lr = w.BoundedFloatText(value=cfg.lr, min=1e-6, max=1.0, step=1e-4, description="learning rate", style=style)
        self.spec = w.HTML()
        for widget in (self.strategy, self.k):
            widget.observe(self._on_layers, names="value")
        self._on_layers()
        shown = [self.strategy, self.k, self.spec] if layers else []
        self.classes = self._class_widgets(cfg, style, layout)
        self.widget = w.VBox([self.source, self.target, *self.classes, *shown, self.steps, self.lr])

    def _class_widgets(self, cfg: TrainConfig, style, layout) -> list:
        """A class picker and a `{class}` hint, where the generator's classes have names (CIFAR-10)."""
        import ipywidgets as w

        from nada_utils.experiments.study import class_names_of

        self.class_names = class_names_of(cfg)
        if not self.class_names:
            return []
        chosen = cfg.classes or list(range(len(self.class_names)))
        self.class_picker = w.SelectMultiple(options=[(name, i) for i, name in enumerate(self.class_names)],
                                             value=tuple(chosen), rows=min(10, len(self.class_names)),
                                             description="classes", style=style, layout=layout)
        hint = w.HTML(f"<small>{CLASS_SLOT} in a text becomes each class's name ({', '.join(self.class_names[:3])}, "
                      f"...): one direction per class. Ctrl/Cmd-click picks several classes.</small>")
        return [self.class_picker, hint]

    def chosen_classes(self) -> list[int] | None:
        """The picked classes; None (every class) when all are picked or the generator has no named classes."""
        if not self.classes:
            return self.base.classes
        picked = sorted(self.class_picker.value)
        if not picked:
            raise NadaError("no class picked; pick at least one in the classes list")
        return None if len(picked) == len(self.class_names) else picked

    def _on_layers(self, change=None) -> None:
        takes_k = self.strategy.value.endswith(":")
        self.k.disabled = not takes_k
        self.spec.value = f"<code>--layers {self.layers()}</code>"

    def layers(self) -> str:
        return layer_spec(self.strategy.value, self.k.value) if self.with_layers else self.base.layers

    def config(self) -> TrainConfig:
        """The base config with the widget values; invalid values raise NadaError naming the fix."""
        return check_config(TrainConfig.from_dict({**self.base.to_dict(), "source_text": self.source.value,
                                      "target_text": self.target.value, "layers": self.layers(),
                                      "steps": int(self.steps.value), "lr": float(self.lr.value),
                                      "classes": self.chosen_classes()}))

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)
