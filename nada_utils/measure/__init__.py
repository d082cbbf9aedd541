"""How good is an adapted generator: metrics over held-out latents and the checkpoint to keep
(`evaluation`), dlib face descriptors (`face_descriptors`), ground truth by name (`ground_truth`),
high-frequency and grid energy of images (`spectra`), and the plots of runs and studies (`plots`). It scores generators; it never trains them.

May import: helpers, weights, models, mini_world
"""
