"""What runs the trainer to learn about it: block-importance studies (`study`), the training step's
benchmark (`bench`) and its peak-memory estimates (`memory`).

May import: helpers, weights, models, mini_world, measure, adapt
"""
