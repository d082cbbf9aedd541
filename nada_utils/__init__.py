"""nada: text-driven adaptation of StyleGAN2 generators (StyleGAN-NADA), in plain PyTorch.

Public surface: `Generator`, `load_generator`, `save_generator`, `load_clip`, and the weight
registry (`nada_utils.registry`, `nada_utils.download.fetch`). Nothing happens at import beyond
importing torch.
"""

from .clip_models import load_clip
from .errors import NadaError
from .generator_io import load_generator, random_generator, save_generator
from .stylegan2 import Generator

__all__ = ["Generator", "NadaError", "load_clip", "load_generator", "random_generator", "save_generator"]
__version__ = "0.1.0"
