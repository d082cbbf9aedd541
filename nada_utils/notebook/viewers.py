"""Looking at adapted generators in a notebook: side-by-side grids, a truncation slider, domain interpolation.

Every view renders the same seeds for every generator, so rows differ only by the generator.
Sliders re-render when released (`continuous_update=False`): a 1024 px generator on a CPU takes
seconds per grid, and queued intermediate renders would only slow the one the user wants.
"""

from __future__ import annotations

from pathlib import Path

import torch

from nada_utils.adapt.run_dir import adapted_generator_path, frozen_of
from nada_utils.errors import NadaError
from nada_utils.images import image_grid, png_bytes, save_image
from nada_utils.models.blending import GeneratorBlend
from nada_utils.models.generator_io import load_generator
from nada_utils.models.rendering import render_seeds
from nada_utils.notebook.session import Session


def find_run(source, session: Session) -> Path:
    """A run name, run dir, checkpoint or .pt -> its path: as given, else under the runs folder, else on the mirror."""
    candidates = [Path(str(source)).expanduser(), session.run_dir(str(source)), session.sync_dir(str(source))]
    for path in candidates:
        if path is not None and path.exists():
            return path
    raise NadaError(f"no adapted generator {source!r}: not a path, not in {session.runs}"
                    + (f", not in {session.mirror / 'runs'}" if session.mirror else "") + "; train it first (train.ipynb)")


def load_adapted(sources, session: Session, *, frozen: str | None = None):
    """(G_frozen, {name: G_adapted}) for run names, run dirs, Drive paths or .pt files.

    The frozen generator is the one the runs were trained from (their config.json), or `frozen`.
    """
    if isinstance(sources, (str, Path)):
        sources = [sources]
    sources = [str(s).strip() for s in sources if str(s).strip()]  # "sketch, cartoon".split(",") has spaces
    if not sources:
        raise NadaError("no adapted generator given; name a run, a run folder or a .pt file")
    adapted, parents = {}, set()
    for source in sources:
        path, parent = adapted_generator_path(find_run(source, session))
        adapted[source] = load_generator(path, device=session.device)  # the row's name is what the user typed
        parents.add(parent)
    frozen = frozen_of(parents, frozen)
    return load_generator(frozen, device=session.device), adapted


def class_names(G) -> list[str] | None:
    """The names of a conditional generator's classes, from the registry entry it was loaded as."""
    from nada_utils.weights.registry import REGISTRY

    spec = REGISTRY.get(str(getattr(G, "source", "")))
    return list(spec.class_names) if G.c_dim and spec is not None and spec.class_names else None


def pick_class(G_frozen, label="") -> int | list[int] | None:
    """What a conditional generator shows: class `label`, by number or name ("bird"); with `label`
    empty, every class, the seeds going through them in turn. None for an unconditional generator."""
    label = str(label).strip()
    if not G_frozen.c_dim:
        if label:
            raise NadaError(f"class {label!r} given, but this generator has no classes; leave the class empty")
        return None
    names = class_names(G_frozen) or []
    if not label:
        print(f"class-conditional generator: the seeds go through its {G_frozen.c_dim} classes"
              + (f" ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})" if names else "")
              + " in turn; set `class_label` to show one")
        return list(range(G_frozen.c_dim))
    if label.isdigit() and int(label) < G_frozen.c_dim:
        idx = int(label)
    elif label in names:
        idx = names.index(label)
    else:
        known = f"{', '.join(names)} or " if names else ""
        raise NadaError(f"no class {label!r} in this generator; use {known}a number from 0 to {G_frozen.c_dim - 1}")
    print(f"class-conditional generator: showing class {idx}" + (f" ({names[idx]})" if names else ""))
    return idx


def compare_grid(G_frozen, adapted: dict, seeds, *, truncation: float = 0.7, class_idx: int | list[int] | None = None) -> torch.Tensor:
    """One grid: G_frozen on the first row, then one row per adapted generator; same seeds in each column."""
    rows = [render_seeds(G, seeds, truncation_psi=truncation, class_idx=class_idx) for G in [G_frozen, *adapted.values()]]
    return image_grid(torch.cat(rows), nrow=len(seeds))


def show_compare(G_frozen, adapted: dict, seeds, *, truncation: float = 0.7, class_idx: int | list[int] | None = None,
                 save_to=None) -> None:
    """Display `compare_grid` with its row names; with `save_to`, also write it as a PNG there."""
    from IPython.display import HTML, Image, display

    grid = compare_grid(G_frozen, adapted, seeds, truncation=truncation, class_idx=class_idx)
    display(HTML("rows: <b>G_frozen</b>, " + ", ".join(f"<b>{name}</b>" for name in adapted)
                 + f"; seeds {list(seeds)}, truncation {truncation}"
                 + ("" if class_idx is None else f", class {class_idx}")))
    display(Image(data=png_bytes(grid)))
    if save_to is not None:
        print(f"saved {save_image(grid, save_to)}")


class _SliderView:
    """A slider above an image; the image is re-rendered by `render(value)` when the slider moves."""

    def __init__(self, slider, render, caption: str):
        import ipywidgets as w

        self.slider, self._render, self._caption = slider, render, caption
        # flex-start: shown at its own size (a VBox would stretch a small grid to its width, blurred).
        self.image = w.Image(format="png", layout=w.Layout(align_self="flex-start"))
        self.caption = w.HTML(caption)
        self.widget = w.VBox([self.caption, self.slider, self.image])
        slider.observe(lambda change: self.refresh(), names="value")
        self.refresh()

    def refresh(self) -> None:
        # A slider callback's exception would only reach the kernel log: show it where the user looks.
        try:
            self.image.value = png_bytes(self._render(self.slider.value))
            self.caption.value = self._caption
        except Exception as e:  # noqa: BLE001 - any failure must be visible in the notebook
            self.caption.value = f'<span style="color:#b00">error: {type(e).__name__}: {e}</span>'

    def _repr_mimebundle_(self, **kwargs):
        return self.widget._repr_mimebundle_(**kwargs)


def truncation_view(G_frozen, adapted: dict, seeds, *, truncation: float = 0.7,
                    class_idx: int | list[int] | None = None) -> _SliderView:
    """A truncation-psi slider over the side-by-side grid (psi 0: the mean face; 1: full variety)."""
    import ipywidgets as w

    slider = w.FloatSlider(value=truncation, min=0.0, max=1.0, step=0.05, description="truncation",
                           continuous_update=False)
    return _SliderView(slider, lambda psi: compare_grid(G_frozen, adapted, seeds, truncation=psi, class_idx=class_idx),
                       "rows: G_frozen, " + ", ".join(adapted))


def interpolation_view(G_frozen, G_train, seeds, *, truncation: float = 0.7, alpha: float = 0.5,
                       class_idx: int | list[int] | None = None) -> _SliderView:
    """An alpha slider over images of `alpha * G_train + (1 - alpha) * G_frozen` (weights blended)."""
    import ipywidgets as w

    blend = GeneratorBlend(G_frozen, G_train)
    slider = w.FloatSlider(value=alpha, min=0.0, max=1.0, step=0.05, description="alpha", continuous_update=False)
    return _SliderView(slider, lambda a: image_grid(render_seeds(blend.at(a), seeds, truncation_psi=truncation,
                                                                 class_idx=class_idx), nrow=len(seeds)),
                       "domain interpolation: alpha 0 is G_frozen, alpha 1 is G_train (weights blended)")


def save_interpolation(G_frozen, G_train, seeds, path, *, alphas=(0.0, 0.25, 0.5, 0.75, 1.0),
                       truncation: float = 0.7, class_idx: int | list[int] | None = None) -> None:
    """A grid with one row per alpha (G_frozen at the top, G_train at the bottom), written as a PNG."""
    blend = GeneratorBlend(G_frozen, G_train)
    rows = [render_seeds(blend.at(a), seeds, truncation_psi=truncation, class_idx=class_idx) for a in alphas]
    path = save_image(image_grid(torch.cat(rows), nrow=len(seeds)), path)
    print(f"saved {path} (rows: alpha {', '.join(f'{a:g}' for a in alphas)})")


def show_study(rows: list[dict], out_dir, *, title: str = "", class_names: list[str] | None = None) -> None:
    """Write the study's table, JSON and plot to `out_dir`, and display them with every setting's final grid."""
    from IPython.display import HTML, Image, Markdown, display

    from nada_utils.experiments.study import class_study_table, study_table, write_study

    paths = write_study(rows, out_dir, title=title, class_names=class_names)
    display(Markdown(study_table(rows)))
    per_class = class_study_table(rows, names=class_names)
    if per_class:
        display(Markdown("Per class:\n\n" + per_class))
    display(Image(filename=str(paths["plot"])))
    for r in rows:
        if r.get("samples"):
            display(HTML(f"<b>{r['layers']}</b>: top row G_frozen, bottom row G_train"))
            display(Image(filename=r["samples"]))
    print(f"table, rows and plot written to {out_dir}")
