"""The method: settings (`config`, the checks that need torch in `checks`), losses and CLIP guidance
(`losses`, `clip_guide`, `prompt_templates`), which layers train (`layer_specs`, `freezing`,
`selection`), what a run trains with (`setup`), one step's latents and losses (`latents`,
`training_step`), the training loop (`trainer`), and what a run leaves on disk (`checkpoint`, `run_dir`).

May import: helpers, weights, models, mini_world, measure
"""
