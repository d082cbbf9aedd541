"""Argument parsing shared by the commands: one error line instead of argparse's usage dump, and lists."""

from __future__ import annotations

import argparse

from nada_utils.errors import NadaError


class Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse prints usage plus a message; we keep the one-line contract
        raise NadaError(f"{message} (see: python -m nada_utils {self.prog.split()[-1]} --help)")


def _numbers(text: str | None, flag: str, cast, example: str) -> tuple | None:
    if text is None:
        return None
    try:
        return tuple(cast(v) for v in text.split(","))
    except ValueError:
        raise NadaError(f"bad {flag} {text!r}; give comma-separated {example}") from None


def floats(text: str | None, flag: str) -> tuple[float, ...] | None:
    """A comma-separated list of numbers, e.g. --clip-weights 1.0,0.5."""
    return _numbers(text, flag, float, "numbers like 1.0,0.5")


def ints(text: str | None, flag: str) -> tuple[int, ...] | None:
    """A comma-separated list of whole numbers, e.g. --classes 2,3."""
    return _numbers(text, flag, int, "whole numbers like 2,3")


def names(text: str | None, flag: str) -> tuple[str, ...] | None:
    """A comma-separated list of names, e.g. --clip ViT-B/32,ViT-B/16; an empty name is an error."""
    if text is None:
        return None
    names = tuple(n.strip() for n in text.split(","))
    if not all(names):
        raise NadaError(f"{flag} {text!r} has an empty name; give names separated by single commas, e.g. ViT-B/32,ViT-B/16")
    return names
