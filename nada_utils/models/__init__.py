"""The networks and how to load them: StyleGAN2 (`stylegan2`, `generator_io`), StyleGAN3
(`stylegan3`, `stylegan3_ops`, `stylegan3_io`; both load state dicts through `state_loading`), CLIP (`clip_models`),
seeded random stand-ins (`builtin_models`), IR-SE50 (`identity`), LPIPS-VGG (`lpips`), dlib's face
alignment (`face_align`), and images from them (`rendering`, `blending`).

May import: helpers, weights
"""
