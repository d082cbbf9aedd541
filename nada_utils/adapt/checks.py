"""The checks of a TrainConfig that need the code it configures: run once, before training starts.

`TrainConfig` checks what a value can fail on its own (ranges, choices); the fast-path names, the
ground truth's world and the prompts (CLIP's tokenizer, the 77-token limit) are checked here, so that a
bad value fails in one line before any model loads and config.py stays free of torch.
"""

from __future__ import annotations

import dataclasses

from nada_utils.adapt.config import TrainConfig


def check_config(cfg: TrainConfig) -> TrainConfig:
    """`cfg` with its prompts tidied (stripped), or a NadaError naming what is wrong and the fix."""
    import torch

    from nada_utils.adapt.clip_guide import check_prompts
    from nada_utils.adapt.training_step import parse_fast
    from nada_utils.measure.ground_truth import check_ground_truth

    parse_fast(cfg.fast, torch.device("cpu"))  # the names are checked here; what "auto" means, at run time
    check_ground_truth(cfg.ground_truth)
    if cfg.style_images is not None:
        return cfg
    source, target = check_prompts(cfg.source_text, cfg.target_text, templates=cfg.templates)
    return dataclasses.replace(cfg, source_text=source, target_text=target)
