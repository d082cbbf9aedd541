"""What runs the trainer to learn about it: studies over layer specs and seeds (`study`, on `runs`, which
trains many runs here or in worker processes), the training step's benchmark (`bench`) and its
peak-memory estimates (`memory`).

May import: helpers, weights, models, mini_world, measure, adapt
"""
