"""The mini world: a procedural domain with ground truth, and small models trained on it.

Every latent z of a mini generator corresponds to a known scene (`scene_from_z`), and the renderer
draws that scene in several styles. So the true "sketch of G_frozen(z)" is known, and adaptation
can be measured against it, which is impossible with real models.

Two worlds live here. The first (`renderer`, `metrics`; models `mini-photo`, `mini-clip`) is kept so
that runs made with it still load and score as they did; its metrics reward a blank page (issue 18).
The second (`world_v2`, `metrics_v2`, `judge`; models `mini-judge`, `mini-clip-2`, `mini-clip-2-robust`
and `mini-photo-2`) has domains that differ in their marks and hard negatives, and is scored by
a judge that training never sees.

May import: helpers, weights, models
"""
