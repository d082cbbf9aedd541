"""The method: settings (`config`), losses and CLIP guidance (`losses`, `clip_guide`,
`prompt_templates`), which layers train (`freezing`, `selection`), one step (`training_step`), the
training loop (`trainer`), and what a run leaves on disk (`checkpoint`, `run_dir`).

May import: helpers, weights, models, mini_world, measure, drive_sync
"""
