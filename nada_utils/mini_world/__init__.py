"""The mini world: a procedural domain with ground truth, and small models trained on it.

Every latent z of the mini generator corresponds to a known scene (`scene_from_z`), and the renderer
draws that scene in several styles. So the true "sketch of G_frozen(z)" is known, and adaptation
can be measured against it (`metrics.gap_closed`), which is impossible with real models.

May import: helpers, weights, models
"""
