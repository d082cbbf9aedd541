"""The vocabulary of layer specs, the strings that say which layers of G_train train (`--layers`).

Data only, so that the CLI's help, the notebook's widgets and the error messages all read the same
list without importing torch; `freezing.parse_layer_spec` turns a spec into layers for one generator.
"""

from __future__ import annotations

# The official code's manual layer sets (`phase:NAME`).
PHASES = ("texture", "shape", "no_fine", "shape_expanded", "all")

# Every form a spec can take, with what it trains. K is a count, NAME a phase, A,B module prefixes.
LAYER_SPECS = (
    ("all", "the constant, conv1 and every synthesis conv (the official code's manual default)"),
    ("official", "conv1, to_rgb1 and every synthesis conv (what the official README's recipe trains)"),
    ("last:K", "the last K resolution blocks"),
    ("phase:NAME", f"one of the official code's manual sets: {', '.join(PHASES)}"),
    ("layers:A,B", "these module prefixes, e.g. layers:convs.6,convs.7"),
    ("auto:K", "per step, the layers read by the top-K W+ indices of the paper's W+ optimisation"),
    ("auto-official:K", "the same with the official code's W+ table, one off from what the generator reads"),
    ("gradnorm:K", "per step, the K layers with the largest gradient norm of the global CLIP loss"),
)

KINDS = tuple(form.partition(":")[0] for form, _ in LAYER_SPECS)
TAKES_K = tuple(form.partition(":")[0] for form, _ in LAYER_SPECS if form.endswith(":K"))
DYNAMIC_KINDS = ("auto", "auto-official", "gradnorm")  # re-chosen during training
STYLEGAN2_ONLY = ("official", "phase", "auto-official")  # the official code's sets, defined by StyleGAN2's layers


def spec_forms(*, exclude: tuple[str, ...] = ()) -> str:
    """"all, official, last:K, ... or gradnorm:K": the forms for a help text or an error message."""
    forms = [form for form, _ in LAYER_SPECS if form.partition(":")[0] not in exclude]
    return ", ".join(forms[:-1]) + " or " + forms[-1]
