"""How the mini world names its domains: the one place its captions and prompts are spelled.

The CLIP recipe captions renders with them, zero-shot checks and the presets use each domain's
prompt. No torch here, so that settings (`adapt/config.py`'s presets) can import the prompts without
loading what they configure (`tests/test_layers.py`).
"""

from __future__ import annotations

# How each domain is named in captions ({c}: colour, {s}: shape); the first phrase of each is the
# domain's prompt (PROMPTS). Keys are `world.ALL_DOMAINS` (tested).
CAPTIONS = {
    "photo": ("a photo", "a photo of a {c} {s}", "a photo of a {s}", "a {c} {s} in a photo"),
    "sketch": ("a pencil sketch", "a pencil sketch of a {s}", "a sketch of a {s}", "a pencil drawing of a {s}"),
    "cartoon": ("a cartoon", "a cartoon of a {c} {s}", "a cartoon {s}", "a flat cartoon drawing of a {c} {s}"),
    "night": ("a night photo", "a night photo of a {c} {s}", "a photo of a {s} at night", "a starry night photo of a {s}"),
    "bw-photo": ("a black and white photo", "a black and white photo of a {s}", "a grey photo of a {s}",
                 "a monochrome photo of a {s}"),
    "blank": ("a blank page", "an empty sheet of paper", "a blank sheet", "a page with nothing on it"),
    "dark-photo": ("a dark photo", "a dark photo of a {c} {s}", "an underexposed photo of a {s}", "a dim blue photo of a {s}"),
}

# The short text that names each domain: zero-shot prompts, and the presets' source and target texts.
PROMPTS = {domain: captions[0] for domain, captions in CAPTIONS.items()}


def domain_prompt(domain: str) -> str:
    """The short text that names a domain ("sketch" -> "a pencil sketch")."""
    return PROMPTS[domain]
