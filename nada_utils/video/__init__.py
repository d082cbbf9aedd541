"""Videos of adapted generators (`python -m nada_utils video`): latent walks, domain morphs, a photo in every style.

`motion` computes the paths (latents and blend weights per frame), `grid` tiles the generators' frames
with their names, `encoders` writes MP4 (PyAV) and GIF (Pillow) while frames stream in, and `render`
ties them together.

May import: helpers, weights, models
"""
