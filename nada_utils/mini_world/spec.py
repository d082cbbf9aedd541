"""The mini world's model sizes, shared by the recipe (which trains the bundled weights) and the library.

The domains' captions and prompts are spelled in `captions.py`.
"""

# The mini generator: our Generator class in the rosinality layout at 64 px with small channels.
MINI_GENERATOR = dict(img_resolution=64, w_dim=128, z_dim=128, n_mlp=4,
                      channels={4: 128, 8: 128, 16: 128, 32: 64, 64: 32})

# The mini CLIP: clip.model.CLIP(embed_dim, image_resolution, vision_layers, vision_width, patch,
# context_length, vocab_size, transformer_width, transformer_heads, transformer_layers).
MINI_CLIP = dict(embed_dim=64, image_resolution=64, vision_layers=4, vision_width=128, vision_patch_size=8,
                 context_length=77, vocab_size=49408, transformer_width=64, transformer_heads=1, transformer_layers=3)
