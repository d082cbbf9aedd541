"""The mini world: a procedural domain with ground truth, and small models trained on it.

Every latent z of a mini generator corresponds to a known scene (`scene_from_z`), and `world.render`
draws that scene in several styles. So the true "sketch of G_frozen(z)" is known, and adaptation
can be measured against it, which is impossible with real models.

`world` draws the scenes in every domain and its hard negatives (`captions` names them), `metrics`
scores a run against the true images with `judge`, a small CNN that training never sees; the bundled
models (`weights/`: `mini-photo-2`, `mini-clip-2`, `mini-clip-2-robust`, `mini-judge`) are trained by
the recipe (`recipe/`, commands that nothing in the library imports).
docs/MINI_WORLD.md says why the domains differ in their marks rather than their page.

May import: helpers, weights, models
"""
