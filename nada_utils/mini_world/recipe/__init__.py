"""The mini world's recipe: the trainers of its bundled models, and the check of what they learned.

Each is a command, resumable at any step and exact on resume (`common.Resumable`):

    python -m nada_utils.mini_world.recipe.train_generator --out mini_photo_2.pt --conditional ...
    python -m nada_utils.mini_world.recipe.train_clip --out mini_clip_2.pt --patch 16 ...
    python -m nada_utils.mini_world.recipe.train_judge --out mini_judge.pt
    python -m nada_utils.mini_world.recipe.check_models --out models.json
    OUT=runs/world bash nada_utils/mini_world/recipe/train_world.sh   # every model, in order

docs/MINI_WORLD.md gives the settings and the training logs of the shipped files. Nothing in the
library imports the recipe; it trains and checks the models the library loads.
"""
