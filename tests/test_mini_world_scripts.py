"""The mini world's recipe (the trainers of its bundled models) resumes exactly: a run stopped and continued
writes the same file; and the experiments in scripts/experiments/ run and measure what they say."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = ROOT / "scripts" / "experiments"
# The scripts import nada_utils as installed; PYTHONPATH makes it this checkout's, installed or not.
ENV = {"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}


def recipe(script: str) -> list[str]:
    """The command that runs one of the recipe's trainers: `python -m nada_utils.mini_world.recipe.NAME`."""
    return [sys.executable, "-m", f"nada_utils.mini_world.recipe.{Path(script.split()[0]).stem}"]


CASES = {
    "train_judge.py": ["--steps", "6", "--batch", "8", "--pool", "24", "--eval-n", "14"],
    "train_clip.py": ["--steps", "6", "--batch", "8", "--pool", "24", "--eval-n", "14"],
    # Adversarial fine-tuning of a bundled CLIP, half of each batch attacked: the attack draws from the
    # run's generator, so it resumes too.
    "train_clip.py --adv-eps": ["--steps", "4", "--batch", "8", "--pool", "24", "--eval-n", "14", "--adv-eps", "3",
                                   "--adv-share", "0.5", "--patch", "16",
                                   "--init", str(Path(__file__).resolve().parents[1] / "nada_utils" / "mini_world"
                                                 / "weights" / "mini_clip_2.pt")],
    "train_generator.py": ["--steps", "4", "--batch", "2"],
}


def run(script, args, out, state):
    done = subprocess.run([*recipe(script), *args, "--out", str(out), "--state", str(state), "--device", "cpu"],
                          capture_output=True, text=True, timeout=600, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.parametrize("script", sorted(CASES))
def test_a_stopped_training_continues_to_the_same_weights(tmp_path, script):
    args = CASES[script]
    run(script, args, tmp_path / "whole.pt", tmp_path / "whole.state")
    out = run(script, [*args, "--stop-after", "2"], tmp_path / "split.pt", tmp_path / "split.state")
    assert "stopped at step 2" in out
    out = run(script, args, tmp_path / "split.pt", tmp_path / "split.state")
    assert "resumed" in out
    whole, split = (torch.load(tmp_path / f, weights_only=True) for f in ("whole.pt", "split.pt"))
    whole, split = (w.get("g_ema", w.get("state_dict", w)) for w in (whole, split))
    assert whole.keys() == split.keys() and all(torch.equal(whole[k], split[k]) for k in whole)
    # Other settings than the run was started with are refused, not mixed in.
    failed = subprocess.run([*recipe(script), *args[:1], "99", *args[2:], "--out", str(tmp_path / "split.pt"),
                             "--state", str(tmp_path / "split.state"), "--device", "cpu"],
                            capture_output=True, text=True, timeout=600, env=ENV)
    assert failed.returncode != 0 and "was started with" in failed.stderr


def test_the_recipe_script_runs_every_trainer_as_a_module_into_out(tmp_path):
    """train_world.sh (every shipped model, in order) with a stand-in python that only records its
    arguments: each trainer is a module of the recipe, and every file lands in $OUT, relative to
    the folder it is run from."""
    import importlib.util

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").write_text('#!/bin/sh\necho "$@" >> "$CALLS"\n[ "$1" = -c ] && echo cpu\nexit 0\n')
    (bin_dir / "python").chmod(0o755)
    script = ROOT / "nada_utils" / "mini_world" / "recipe" / "train_world.sh"
    done = subprocess.run(["bash", str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "CALLS": str(tmp_path / "calls"), "OUT": "world"})
    assert done.returncode == 0, done.stderr[-2000:]
    calls = [line.split() for line in (tmp_path / "calls").read_text().splitlines() if line.startswith("-m ")]
    modules = [c[1] for c in calls]
    assert modules == ["nada_utils.mini_world.recipe.train_clip"] * 2 + ["nada_utils.mini_world.recipe.train_generator"] * 2 \
        + ["nada_utils.mini_world.recipe.train_clip"], modules
    assert all(importlib.util.find_spec(m) for m in modules)
    outs = [c[c.index("--out") + 1] for c in calls]
    assert all(o.startswith("world/") for o in outs) and (tmp_path / "world" / "train_clip.log").is_file()


def test_the_conditional_generator_starts_from_an_unconditional_one_that_stopped_at_a_step(tmp_path):
    """The shipped generator's two stages: an unconditional run stopped at a step (--stop-at; its file is
    that step's weights), then the conditional one (class = shape) from it, drawing what it drew at first."""
    from nada_utils import load_generator
    from nada_utils.models.rendering import class_input

    args = ["--steps", "6", "--batch", "2", "--channels", "16,16,16,8,8"]
    out = run("train_generator.py", [*args, "--stop-at", "3"], tmp_path / "u.pt", tmp_path / "u.state")
    assert "stopped at step 3" in out and "step 3 " in out
    assert "already at step 3" in run("train_generator.py", [*args, "--stop-at", "3"], tmp_path / "u.pt", tmp_path / "u.state")
    run("train_generator.py", [args[0], "1", *args[2:], "--lr", "0", "--conditional", "--init", str(tmp_path / "u.pt")],
        tmp_path / "c.pt", tmp_path / "c.state")  # one step at lr 0: the starting point itself
    U, C = load_generator(tmp_path / "u.pt"), load_generator(tmp_path / "c.pt")
    assert (U.c_dim, C.c_dim) == (0, 3)
    z = torch.randn(3, U.z_dim, generator=torch.Generator().manual_seed(0))
    for label in range(3):  # the label's weights start at zero: every class draws what U drew
        assert torch.allclose(C(z, class_input(C, torch.full((3,), label))), U(z), atol=1e-5)


def fake_sketch_run(run_dir: Path, *, steps=(100, 200)) -> Path:
    """A run dir of the mini-sketch preset whose 'adapted' generator is mini-photo-2 itself, and
    evaluation rows as training writes them (the judge's figures included)."""

    from nada_utils import load_generator, save_generator
    from nada_utils.adapt.config import make_config
    from nada_utils.adapt.run_dir import write_config

    run_dir.mkdir(parents=True)
    write_config(run_dir, make_config("mini-sketch"))
    save_generator(load_generator("mini-photo-2"), run_dir / "generator.pt")
    rows = [{"step": s, "clip_gain": 0.58 + i / 50, "directional": 0.6 + i / 10, "diversity_ratio": 1.0,
             "structure_clip": 0.5 - i / 10,
             "judged_target": 0.2 + i / 2, "shape_kept": 1.0 - i / 10} for i, s in enumerate(steps)]
    (run_dir / "eval.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir


def test_checkpoint_choice_sets_every_rule_beside_the_ground_truth(tmp_path):
    run_dir = fake_sketch_run(tmp_path / "run")
    done = subprocess.run([sys.executable, str(SCRIPTS / "checkpoint_choice.py"), str(run_dir), "--table"],
                          capture_output=True, text=True, timeout=120, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    # The ground truth prefers step 200 (0.7 x 0.9 = 0.63 against 0.2 x 1.0); the shipped rule keeps the last,
    # the earlier rule the one more like the frozen images (step 100), 0.43 below the last.
    assert "| shipped (evaluation.best_step) | 100% | 0.000 | yes |" in done.stdout
    assert "| the earlier rule | 0% | 0.430 | no |" in done.stdout
    assert f"| {run_dir} | 100-200 | 200 | 0.630 | 0.630 (200) |" in done.stdout


def test_the_inversion_check_scores_against_the_true_sketches(tmp_path):

    run_dir = fake_sketch_run(tmp_path / "run")
    done = subprocess.run([sys.executable, str(SCRIPTS / "inversion_check.py"), "--scenes", "2", "--steps", "3",
                           "--edit-steps", "2", "--adapted", str(run_dir), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    m = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert m["generator"] == "mini-photo-2" and len(m["psnr"]) == 2 and len(m["edit_texts"]) == 2
    # The 'adapted' generator is the frozen one: the judge sees photos, not sketches.
    assert m["sketch"]["judged_target"] == 0.0 and m["sketch"]["domain"] == "sketch"
    assert all(t.startswith("a photo of a") for t in m["edit_texts"])
    assert (tmp_path / "out" / "inversion.png").is_file() and (tmp_path / "out" / "edits.png").is_file()


def test_the_adversarial_images_stay_within_their_ball_and_raise_the_loss():
    from nada_utils.mini_world.recipe.common import l2_attack

    images = torch.rand(4, 3, 8, 8, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.8
    weights = torch.randn(3, 8, 8, generator=torch.Generator().manual_seed(1))

    def loss_of(x):
        return (x * weights).sum()

    attacked = l2_attack(loss_of, images, 0.5, 3, torch.Generator().manual_seed(2))
    assert (attacked - images).flatten(1).norm(dim=1).max() <= 0.5 + 1e-5
    assert attacked.abs().max() <= 1 and loss_of(attacked) > loss_of(images) + 1.0


def test_the_night_probe_needs_the_skys_stars_and_measures_them(tmp_path):

    run_dir = fake_sketch_run(tmp_path / "run")  # the frozen generator as an 'adapted' one: no stars
    out = tmp_path / "probe.json"
    done = subprocess.run([sys.executable, str(SCRIPTS / "night_probe.py"), str(run_dir), "--n", "24", "--supervised", "2",
                           "--nada", "2", "--positional", "--sparsity", "1", "--every", "2", "--grids", str(tmp_path / "grids"),
                           "--out", str(out)],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(out.read_text())
    made_up, generators = r["made_up"], r["generators"]
    # The judge calls night only with the sky's own stars; the stars measure tells them from the dark photo.
    assert made_up["the true night"]["judged_night"] == 1.0 and made_up["the true night"]["stars"] > 0.4
    assert made_up["dark photo + the sky's stars (no rim light)"]["judged_night"] == 1.0
    assert made_up["dark photo + 18 stars elsewhere"]["judged_night"] == 0.0
    assert abs(made_up["dark photo"]["stars"]) < 0.01 and abs(made_up["dark photo + 18 stars elsewhere"]["stars"]) < 0.01
    assert abs(generators[str(run_dir)]["stars"]) < 0.01 and generators["frozen generator"]["judged_night"] == 0.0
    # Under the mini CLIP the true night lies further along "a photo" -> "a night photo" than the dark photo.
    assert made_up["the true night"]["cos"]["mini-clip-2"] > made_up["dark photo"]["cos"]["mini-clip-2"] + 0.3
    # Both checks ran with the positional image and drew their rows (frozen, trained, true night, the image).
    assert [row["step"] for row in r["supervised"]] == [2] and [row["step"] for row in r["nada"]] == [2]
    assert "mini-clip-2" in r["nada"][0]["cos"]
    for name in ("supervised-positional-sparsity1.png", "nada-positional-sparsity1-mini-clip-2.png"):
        with Image.open(tmp_path / "grids" / name) as grid:
            assert grid.height > 4 * 64 and grid.width > 8 * 64


def test_seed_ablation_compares_each_variant_with_the_reference_over_seeds(tmp_path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("seed_ablation", SCRIPTS / "seed_ablation.py")
    ablation = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(ablation)
    runs = ablation.plan("mini-cartoon", ["reference", "mixing 0.9", "lr 0.0016"], [0, 1], tmp_path)
    assert runs[0].cfg.reference and runs[0].cfg.steps == 350 and runs[2].cfg.mixing == 0.9 and runs[2].cfg.steps == 250
    assert runs[0].run_dir == tmp_path / "mini-cartoon" / "reference" / "seed-0"
    judged = {"reference": (0.90, 0.80), "mixing 0.9": (0.95, 0.85), "lr 0.0016": (0.99, 0.70)}  # per seed at step 250
    for r in runs:
        r.run_dir.mkdir(parents=True)
        j = judged[r.labels["variant"]][r.labels["seed"]]
        rows = [{"step": s, "judged_target": j, "shape_kept": 1.0, "edge_f1": 0.7, "edge_f1_frozen": 0.6}
                for s in range(50, r.cfg.steps + 1, 50)]
        (r.run_dir / "eval.jsonl").write_text("".join(json.dumps(x) + "\n" for x in rows))
    text, rows = ablation.report("mini-cartoon", runs)
    verdicts = {row["variant"]: row["verdict"] for row in rows}
    assert verdicts["mixing 0.9"] == "**wins**"  # better mean and better worst seed
    assert verdicts["lr 0.0016"] == "loses"  # better mean, worse worst seed
    assert "| mixing 0.9 | 0.900 (0.850) |" in text and "reference, 350 steps" in text


def load_script(name: str):
    import importlib.util

    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_reference_effect_is_a_valid_mini_sketch_config():
    """reference_effects.py mini trains these (docs/REFERENCE.md's figures): each is the preset with
    its overrides, and the departures are what they say."""
    from nada_utils.adapt.config import make_config

    settings = load_script("reference_effects").SETTINGS
    configs = {name: make_config("mini-sketch", reference=reference, **overrides)
               for name, (overrides, reference) in settings.items()}
    preset = configs["mini-sketch"]
    assert preset.ground_truth == "mini-world:sketch" and preset.noise == "random" and preset.mixing_cutoff == "independent"
    assert configs["noise stored"].noise == "stored" and configs["layers official"].layers == "official"
    assert configs["auto-official:4"].layers == "auto-official:4" and configs["reference (all switches)"].reference
    assert configs["auto:4, templates, selection templates"].selection_text == "templates"


def test_the_start_of_training_probe_runs_on_the_mini_world(tmp_path):
    out = tmp_path / "start.json"
    done = subprocess.run([sys.executable, str(SCRIPTS / "start_of_training.py"), "--preset", "mini-sketch", "--steps",
                           "2", "--batch", "3", "--threads", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300, env=ENV)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(out.read_text())["summary"]
    assert summary["generator"] == "mini-photo-2" and summary["batch"] == 3 and set(summary["loss_at"]) == {"1"}
