"""nada: text-driven adaptation of StyleGAN2 and StyleGAN3 generators (StyleGAN-NADA), in plain PyTorch.

Public surface: `Generator`, `StyleGAN3Generator`, `load_generator`, `save_generator`, `load_clip`, `NadaError`, the weight
registry (`nada_utils.weights.registry`, `nada_utils.weights.download.fetch`) and
`from nada_utils import notebook as nb`. Nothing happens at import beyond importing torch.

The house, bottom to top; each subpackage's docstring says what it may import, and
tests/test_layers.py checks it (no import goes up, no module imports itself round a loop):
    helpers      errors, fileio, images, devices (these modules, here at the top level)
    weights/     registry, downloads, file formats, safe unpickling
    models/      the networks and their loaders (StyleGAN2, StyleGAN3, CLIP, IR-SE50, LPIPS, random stand-ins)
    mini_world/  the procedural domain with ground truth
    measure/     metrics, the checkpoint to keep, plots
    adapt/       the method: config, losses, layer selection, the step, the trainer, run dirs
    experiments/ studies and benchmarks that run the trainer
    invert/      projection, e4e, inversion, latent edits
    notebook/, cli/  what notebook cells and `python -m nada_utils` call
Helpers may import only one another. Code inside the package imports modules, never this surface.
"""

from nada_utils.errors import NadaError
from nada_utils.models.builtin_models import random_generator
from nada_utils.models.clip_models import load_clip
from nada_utils.models.generator_io import load_generator, save_generator
from nada_utils.models.stylegan2 import Generator
from nada_utils.models.stylegan3 import StyleGAN3Generator

__all__ = ["Generator", "NadaError", "StyleGAN3Generator", "load_clip", "load_generator", "random_generator", "save_generator"]
__version__ = "0.1.0"
