"""Which layers of G_train are trained: ONE table from W+ indices to modules, and the layer specs.

Layers are named by module prefix. StyleGAN2 (rosinality layout): "input" (the learned constant),
"conv1", "to_rgb1", "convs.N", "to_rgbs.N". StyleGAN3 (NVlabs' names): "synthesis.input" (the
Fourier features' affine), "synthesis.L0_36_512" ... and its last layer, the toRGB. A prefix trains
every parameter under it (the convolution, its modulation affine, noise strength and bias; with
`freeze_noise`, not the noise strength).
StyleGAN3 has no resolution blocks: each of its layers is a block of its own for `last:K` (its
toRGB goes with the last one), and the official code's StyleGAN2 sets (`official`, `phase:`,
`auto-official:`) are refused for it.

The W+ index -> modules table is read off `G.ws_layout`, the same list that drives
`Generator.synthesis`, and the tests check it against the forward pass by tagging each W+ slot.
The reference implementation maps index i to `[conv1, to_rgb1, convs...][i]`, one off from what its
own generator reads from index 2 on; here index i maps to exactly the layers that read it.

Layer specs (strings, as on the command line) are listed once, in `layer_specs.LAYER_SPECS`.
`official` is what the official README's recipe (`--auto_layer_k 18`) trains: its W+ table maps the 18
indices to exactly conv1, to_rgb1 and the convs. `auto-official:K` keeps that table (index i ->
[conv1, to_rgb1, convs...][i]) so that the effect of the fix is measured, not asserted.
The mapping network is never trained except by `phase:all`; toRGB layers join only with
`include_torgb=True` (or `phase:all`, or when named in `layers:`).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from nada_utils.adapt.layer_specs import DYNAMIC_KINDS, PHASES, STYLEGAN2_ONLY, TAKES_K, spec_forms
from nada_utils.errors import NadaError
from nada_utils.models.stylegan2 import Generator



def ws_index_table(G: Generator) -> dict[int, set[str]]:
    """W+ index -> the module prefixes whose modulation reads it, e.g. {0: {"conv1"}, 1: {"to_rgb1", "convs.0"}, ...}."""
    table: dict[int, set[str]] = {i: set() for i in range(G.num_ws)}
    for name, index in G.ws_layout:
        table[index].add(name)
    return table


def selectable_layers(G: Generator, *, include_torgb: bool) -> list[str]:
    """The modulated layers a dynamic strategy may pick, in forward order."""
    return [name for name, _ in G.ws_layout if include_torgb or not G.is_torgb(name)]


@dataclass(frozen=True)
class LayerSpec:
    """A parsed layer spec: `kind` ("all", "official", "last", "phase", "layers", "auto", "auto-official",
    "gradnorm") and its argument."""

    kind: str
    k: int | None = None  # for last / auto / gradnorm
    phase: str | None = None  # for phase
    names: tuple[str, ...] = ()  # for layers

    @property
    def dynamic(self) -> bool:
        """Whether the trained set is re-chosen during training (auto, gradnorm)."""
        return self.kind in DYNAMIC_KINDS

    def __str__(self) -> str:
        if self.kind in TAKES_K:
            return f"{self.kind}:{self.k}"
        if self.kind == "phase":
            return f"phase:{self.phase}"
        if self.kind == "layers":
            return "layers:" + ",".join(self.names)
        return self.kind


def _k_range(kind: str, G: Generator, include_torgb: bool) -> int:
    if kind == "last":
        return len(G.synthesis_blocks())
    if kind in ("auto", "auto-official"):
        return G.num_ws
    return len(selectable_layers(G, include_torgb=include_torgb))


def parse_layer_spec(spec: str, G: Generator, *, include_torgb: bool = False) -> LayerSpec:
    """Parse and validate a layer spec against G; errors name the valid forms or the allowed K range."""
    text = str(spec).strip()
    kind, sep, arg = text.partition(":")
    if kind in STYLEGAN2_ONLY and not G.has_official_layer_sets:
        raise NadaError(f"layer spec {text!r} is one of the official code's StyleGAN2 sets, which StyleGAN3 does not "
                        f"have; for StyleGAN3 use {spec_forms(exclude=STYLEGAN2_ONLY)}")
    if kind in ("all", "official") and not sep:
        return LayerSpec(kind)
    if kind in TAKES_K and sep:
        hi = _k_range(kind, G, include_torgb)
        try:
            k = int(arg)
        except ValueError:
            raise NadaError(f"layer spec {text!r}: K must be an integer between 1 and {hi}") from None
        if not 1 <= k <= hi:
            raise NadaError(f"layer spec {text!r}: K must be between 1 and {hi} for this {G.img_resolution} px generator")
        return LayerSpec(kind, k=k)
    if kind == "phase" and sep:
        if arg not in PHASES:
            raise NadaError(f"unknown phase {arg!r} in layer spec {text!r}; use one of {', '.join(PHASES)}")
        return LayerSpec("phase", phase=arg)
    if kind == "layers" and sep:
        names = tuple(n.strip() for n in arg.split(",") if n.strip())
        known = set(module_prefixes(G))
        unknown = [n for n in names if n not in known]
        if not names or unknown:
            raise NadaError(f"layer spec {text!r}: unknown layer(s) {', '.join(unknown) or '(none given)'}; "
                            f"valid names are {', '.join(module_prefixes(G))}")
        return LayerSpec("layers", names=names)
    raise NadaError(f"unknown layer spec {text!r}; use {spec_forms()}")


def module_prefixes(G: Generator) -> list[str]:
    """Every trainable unit of the synthesis network plus "mapping", in forward order."""
    return ["mapping", *G.constant_layers] + [name for name, _ in G.ws_layout]


def static_layers(spec: LayerSpec, G: Generator, *, include_torgb: bool = False) -> list[str]:
    """The layers a non-dynamic spec trains, in forward order."""
    if spec.kind == "all":
        names = [n for n in module_prefixes(G) if n != "mapping" and not G.is_torgb(n)]
    elif spec.kind == "official":
        return official_ws_layers(G)  # toRGB included, as the official recipe trains to_rgb1
    elif spec.kind == "last":
        # StyleGAN2's constant trains only with every block; StyleGAN3 has none (its input layer is a block).
        blocks = G.synthesis_blocks()
        names = list(G.constant_layers) if spec.k == len(blocks) else []
        names += [n for block in blocks[-spec.k:] for n in block if n not in G.constant_layers and not G.is_torgb(n)]
    elif spec.kind == "phase":
        # The reference's sets: the constant and conv1, plus a slice of convs.
        if spec.phase == "all":
            return module_prefixes(G)
        sl = {"texture": slice(2, 10), "shape": slice(0, 2), "no_fine": slice(0, 10), "shape_expanded": slice(0, 3)}[spec.phase]
        names = ["input", "conv1"] + [f"convs.{i}" for i in range(len(G.convs))][sl]
    elif spec.kind == "layers":
        return [n for n in module_prefixes(G) if n in spec.names]
    else:
        raise ValueError(f"{spec} is chosen during training; use layers_for_ws_indices or top_layers_by_score")
    if include_torgb:
        # A block's toRGB trains when any convolution of that block does.
        names += [n for block in G.synthesis_blocks() if any(m in names for m in block if m not in G.constant_layers and not G.is_torgb(m))
                  for n in block if G.is_torgb(n)]
    order = module_prefixes(G)
    return sorted(set(names), key=order.index)


def layers_for_ws_indices(G: Generator, indices, *, include_torgb: bool = False) -> list[str]:
    """The layers that read any of the given W+ indices (auto:K's mapping), in forward order."""
    table = ws_index_table(G)
    chosen = {name for i in indices for name in table[int(i)] if include_torgb or not G.is_torgb(name)}
    return [n for n in module_prefixes(G) if n in chosen]


def official_ws_layers(G: Generator) -> list[str]:
    """The official code's W+ table as a list: index i -> [conv1, to_rgb1, convs.0, convs.1, ...][i].

    It is one off from what the generator reads from index 2 on (`convs.0` reads index 1, not 2)."""
    return ["conv1", "to_rgb1"] + [f"convs.{i}" for i in range(len(G.convs))]


def official_layers_for_ws_indices(G: Generator, indices) -> list[str]:
    """`auto-official:K`'s mapping: the official table's entries for the indices, in forward order."""
    table = official_ws_layers(G)
    chosen = {table[int(i)] for i in indices}
    return [n for n in module_prefixes(G) if n in chosen]


def parameters_of(G: Generator, layers) -> list[tuple[str, torch.nn.Parameter]]:
    """(name, parameter) pairs under the given layer prefixes ("mapping" means the mapping network, `G.mapping_prefix`)."""
    prefixes = tuple((G.mapping_prefix if n == "mapping" else f"{n}.") for n in layers)
    return [(name, p) for name, p in G.named_parameters() if name.startswith(prefixes)]


def is_noise_strength(name: str) -> bool:
    """Whether parameter `name` is a noise input's learned strength (`convs.3.noise.weight`)."""
    return name.endswith("noise.weight")


def set_trainable(G: Generator, layers, *, freeze_noise: bool = False) -> list[str]:
    """Make exactly the parameters under `layers` require grad (without their noise strengths if
    `freeze_noise`); return their names."""
    G.requires_grad_(False)
    names = []
    for name, p in parameters_of(G, layers):
        if freeze_noise and is_noise_strength(name):
            continue
        p.requires_grad_(True)
        names.append(name)
    return names
