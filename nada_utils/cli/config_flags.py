"""The `train` flags, generated from TrainConfig's fields: each field declares its flag and help once
(`config.option`), and this module turns them into argparse arguments and back into config settings.

A field's type says how its flag reads: `bool` a switch (`negate`: one that sets False, --no-templates),
a tuple a comma list (`--clip ViT-B/32,ViT-B/16`), a number or text one value. The help ends with the
default, read from the field (or its `shown` text), so `--help` cannot drift from the code.
"""

from __future__ import annotations

import argparse
import dataclasses

from nada_utils.adapt.config import TrainConfig
from nada_utils.cli.args import floats, ints, names

# How each annotation of a flagged field reads from the command line (annotations are strings here).
READERS = {
    "str": str, "str | None": str, "int": int, "float": float, "float | None": float,
    "tuple[str, ...]": names, "tuple[str, ...] | None": names, "tuple[float, ...]": floats,
    "tuple[int, ...] | None": ints,
}


def flagged_fields() -> list[dataclasses.Field]:
    """TrainConfig's fields that a user sets from the command line, in declaration order."""
    return [f for f in dataclasses.fields(TrainConfig) if "flag" in f.metadata]


def _default_text(f: dataclasses.Field) -> str:
    if f.metadata["shown"] is not None:
        return f.metadata["shown"]
    value = f.default
    return ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}" if isinstance(value, float) else str(value)


def add_config_flags(parser: argparse.ArgumentParser, *, only: tuple[str, ...] | None = None,
                     groups: dict | None = None) -> None:
    """Add a flag for each flagged field (`only`: these fields) to `parser`; each goes to its `dest` field
    name with default None, so that the settings a user did not give are told apart (`config_overrides`).
    `groups`: argument groups by name, created as needed, for the fields that declare one."""
    groups = {} if groups is None else groups
    for f in flagged_fields():
        if only is not None and f.name not in only:
            continue
        meta = f.metadata
        target = parser
        if meta["group"]:
            target = groups.setdefault(meta["group"], parser.add_argument_group(meta["group"]))
        if f.type == "bool":
            target.add_argument(meta["flag"], dest=f.name, action="store_const", const=not meta["negate"],
                                default=None, help=meta["help"])
            continue
        metavar = None if meta["choices"] else meta["flag"].lstrip("-").upper().replace("-", "_")
        target.add_argument(meta["flag"], dest=f.name, type=_reader(f), choices=meta["choices"], default=None,
                            metavar=metavar, help=f"{meta['help']} (default: {_default_text(f)})")


def _reader(f: dataclasses.Field):
    read = READERS[f.type]
    if read in (names, floats, ints):
        flag = f.metadata["flag"]
        return lambda text: read(text, flag)  # their errors name the flag
    return read


def config_overrides(args: argparse.Namespace) -> dict:
    """The settings given on the command line, by field name (flags left out are not in it)."""
    given = {f.name: getattr(args, f.name, None) for f in flagged_fields()}
    return {name: value for name, value in given.items() if value is not None}
