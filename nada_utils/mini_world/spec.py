"""The mini world's fixed settings: model sizes, captions and the domains' text prompts.

Shared by the training scripts (which make the bundled weights) and by the presets and metrics
(which use them), so both sides agree on what the words mean.
"""

# The mini generator: our Generator class in the rosinality layout at 64 px with small channels.
MINI_GENERATOR = dict(img_resolution=64, w_dim=128, z_dim=128, n_mlp=4,
                      channels={4: 128, 8: 128, 16: 128, 32: 64, 64: 32})

# The mini CLIP: clip.model.CLIP(embed_dim, image_resolution, vision_layers, vision_width, patch,
# context_length, vocab_size, transformer_width, transformer_heads, transformer_layers).
MINI_CLIP = dict(embed_dim=64, image_resolution=64, vision_layers=4, vision_width=128, vision_patch_size=8,
                 context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=3)

# How each domain is named in captions ({c}: colour, {s}: shape). The first phrase of each is the
# zero-shot prompt for domain classification and the preset's text.
DOMAIN_CAPTIONS = {
    "photo": ("a photo", "a photo of a {c} {s}", "a photo of a {s}", "a {c} {s} in a photo"),
    "sketch": ("a pencil sketch", "a pencil sketch of a {s}", "a sketch of a {s}", "a pencil drawing of a {s}"),
    "cartoon": ("a cartoon", "a cartoon of a {c} {s}", "a cartoon {s}", "a flat cartoon drawing of a {c} {s}"),
    "night": ("a night photo", "a night photo of a {c} {s}", "a photo of a {s} at night", "a dark night photo of a {s}"),
}


def domain_prompt(domain: str) -> str:
    """The short text that names a domain (zero-shot prompts, preset texts)."""
    return DOMAIN_CAPTIONS[domain][0]
