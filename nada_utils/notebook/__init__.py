"""What the notebooks call: one import gives every cell its function (`from nada_utils import notebook as nb`).

Notebooks hold no logic of their own: each cell is a call into these modules, which the tests
exercise like the rest of the library.

May import: anything in nada_utils but cli
"""

from nada_utils.adapt.config import make_config
from nada_utils.experiments.study import class_names_of, study_strategies, study_table, write_study
from nada_utils.models.rendering import parse_seeds
from nada_utils.notebook.controls import TrainControls, form_config, layer_spec
from nada_utils.notebook.inversion import choose_image, edit_with_text, invert, mini_world_photo, show_inversion
from nada_utils.notebook.live import (
    RunResult,
    export_generator,
    quick_run,
    run_study,
    show_evaluation,
    show_losses,
    train_live,
)
from nada_utils.notebook.session import Session, fast_mode, setup
from nada_utils.notebook.videos import show_photo_morph, show_video, show_walk
from nada_utils.notebook.viewers import (
                      class_names,
                      compare_grid,
                      find_run,
                      interpolation_view,
                      load_adapted,
                      pick_class,
                      save_interpolation,
                      show_compare,
                      show_study,
                      truncation_view,
)

__all__ = ["RunResult", "Session", "TrainControls", "choose_image", "class_names", "class_names_of", "compare_grid", "edit_with_text", "export_generator",
           "fast_mode", "find_run", "form_config", "interpolation_view", "invert", "layer_spec", "load_adapted", "make_config",
           "mini_world_photo", "parse_seeds", "pick_class", "quick_run", "run_study", "save_interpolation", "setup", "show_compare",
           "show_evaluation", "show_inversion", "show_losses", "show_photo_morph", "show_study", "show_video", "show_walk", "study_strategies", "study_table", "train_live",
           "truncation_view", "write_study"]
