"""Class-conditional generators: training draws a class per latent, `{class}` prompts give each class
its own direction and each latent the loss of its own, and a SIGKILLed run resumes bitwise."""

import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import make_tiny_generator
from nvlabs_fixtures import nvlabs_pickle_bytes, rosinality_to_nvlabs

from nada_utils import load_generator
from nada_utils.adapt.clip_guide import ClipGuide
from nada_utils.adapt.losses import directional_loss
from nada_utils.adapt.run_dir import read_jsonl
from nada_utils.adapt.latents import sample_latents
from nada_utils.cli.main import main
from nada_utils.models.clip_models import load_clip

ROOT = Path(__file__).resolve().parent.parent
NAMES = "cat,dog,bird"
ARGS = ["train", "--preset", "tiny", "--steps", "8", "--checkpoint-every", "2", "--sample-every", "4", "--eval-samples", "4",
        "--source", "a photo of a {class}", "--target", "a sketch of a {class}", "--class-names", NAMES, "--quiet"]


@pytest.fixture
def cond(tmp_path):
    """A tiny random conditional generator in NVlabs' StyleGAN2-ADA pickle layout (CIFAR-10's format);
    its embedded source writes a marker file if it ever runs."""
    G = make_tiny_generator(c_dim=3, seed=0)
    path = tmp_path / "cond.pkl"
    path.write_bytes(nvlabs_pickle_bytes(rosinality_to_nvlabs(G.state_dict(), G.w_avg), tmp_path / "pwned.txt", c_dim=3))
    yield path
    assert not (tmp_path / "pwned.txt").exists(), "the pickle's embedded source was executed"


def test_each_class_gets_its_direction_and_each_latent_its_own_loss():
    guide = ClipGuide([("random:tiny", load_clip("random:tiny"), 1.0)])
    (per_class,) = guide.text_directions("a photo of a {class}", "a sketch of a {class}", templates=False,
                                         class_names=["cat", "dog", "bird"])
    assert per_class.shape[0] == 3 and (per_class[0] - per_class[1]).norm() > 1e-3  # two classes, two directions
    (cat,) = guide.text_directions("a photo of a cat", "a sketch of a cat", templates=False)
    torch.testing.assert_close(per_class[0], cat)
    f, t = torch.randn(4, per_class.shape[1]), torch.randn(4, per_class.shape[1])
    labels = torch.tensor([2, 0, 0, 1])
    # The loss of a batch is the mean of each latent's loss along its own class's direction.
    want = torch.stack([directional_loss(f[i:i + 1], t[i:i + 1], per_class[labels[i]]) for i in range(4)]).mean()
    torch.testing.assert_close(directional_loss(f, t, per_class[labels]), want)


def test_the_guide_picks_each_images_direction(monkeypatch):
    guide = ClipGuide([("random:tiny", load_clip("random:tiny"), 1.0)])
    (per_class,) = guide.text_directions("a photo of a {class}", "a sketch of a {class}", templates=False,
                                         class_names=["cat", "dog", "bird"])
    emb_f, emb_t = torch.randn(4, per_class.shape[1]), torch.randn(4, per_class.shape[1])
    embeddings = iter([[emb_f], [emb_t]])
    monkeypatch.setattr(guide, "encode_images", lambda images: next(embeddings))
    labels = torch.tensor([2, 0, 0, 1])
    total, _ = guide.directional(None, None, [per_class], labels)
    want = torch.stack([directional_loss(emb_f[i:i + 1], emb_t[i:i + 1], per_class[labels[i]]) for i in range(4)]).mean()
    torch.testing.assert_close(total, want)


def test_labels_are_drawn_from_the_chosen_classes_and_unconditional_streams_are_unchanged():
    a = sample_latents(torch.Generator().manual_seed(0), 64, z_dim=8, num_ws=4, mixing=0.0, device="cpu", classes=[2, 3])
    assert set(a.labels.tolist()) == {2, 3}
    b = sample_latents(torch.Generator().manual_seed(0), 64, z_dim=8, num_ws=4, mixing=0.0, device="cpu")
    assert b.labels is None and torch.equal(a.z, b.z)  # the class draw comes after z: old runs draw what they drew


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_a_conditional_run_trains_renders_and_resumes_bitwise_after_sigkill(cond, tmp_path, capsys):
    ref = tmp_path / "ref"
    assert run(capsys, *ARGS, "--generator", str(cond), "--out", str(ref))[0] == 0
    # Killed inside its third checkpoint write, then resumed with the same command.
    killed = tmp_path / "killed"
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "kill_points.py"), "save", "3", "--",
                           *ARGS, "--generator", str(cond), "--out", str(killed)],
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert run(capsys, *ARGS, "--generator", str(cond), "--out", str(killed), "--resume")[0] == 0
    a, b = load_generator(ref / "generator.pt"), load_generator(killed / "generator.pt")
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(ref / "log.jsonl")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_jsonl(killed / "log.jsonl")]
    assert a.c_dim == 3 and any(not torch.equal(x, y) for x, y in
                                zip(a.state_dict().values(), load_generator(cond).state_dict().values()))
    code, err = run(capsys, "generate", "--checkpoint", str(ref), "--compare", "--class", "2", "--seeds", "0-3",
                    "--out", str(tmp_path / "c2.png"))
    assert code == 0 and (tmp_path / "c2.png").is_file(), err


@pytest.mark.parametrize("extra,needle", [
    (["--classes", "1"], "has no classes"),
    (["--target", "a {class}"], "needs a class-conditional generator"),
    (["--cond", "--target", "a {class}"], "pass --class-names with 3 names"),
    (["--cond", "--classes", "5"], "has classes 0-2"),
    (["--cond", "--class-names", "a,b", "--target", "a {class}"], "one per class"),
    (["--cond", "--classes", "a"], "whole numbers"),
])
def test_class_mistakes_are_one_line_and_write_nothing(cond, tmp_path, capsys, extra, needle):
    generator = ["--generator", str(cond)] if "--cond" in extra else []
    extra = [x for x in extra if x != "--cond"]
    code, err = run(capsys, "train", "--preset", "tiny", *generator, *extra, "--out", str(tmp_path / "run"), "--quiet")
    assert code == 2 and needle in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


def test_evaluation_has_a_row_per_class(cond, tmp_path, capsys):
    out = tmp_path / "run"
    code, err = run(capsys, *ARGS, "--generator", str(cond), "--classes", "0,2", "--out", str(out), "--eval-samples", "6")
    assert code == 0, err
    rows = read_jsonl(out / "eval.jsonl")
    assert rows and all(set(r["per_class"]) == {"0", "2"} for r in rows)
    assert all(sum(m["n"] for m in r["per_class"].values()) == r["n"] == 6 for r in rows)
    # The overall figure is the mean over latents, so the two equal-sized classes average to it.
    last = rows[-1]
    assert abs(last["clip_gain"] - (last["per_class"]["0"]["clip_gain"] + last["per_class"]["2"]["clip_gain"]) / 2) < 1e-6
    assert main(["evaluate", "--run", str(out)]) == 0
    assert "per class at step" in capsys.readouterr().out
    # The sample grid names each column's class above it (names given with --class-names).
    from PIL import Image

    from nada_utils.images import label_height

    grid = Image.open(out / "samples" / "step_000008.png").convert("L")
    size = load_generator(str(cond)).img_resolution
    assert grid.height == label_height(size) + 2 * (size + 2) + 2
    strip = torch.from_numpy(np.asarray(grid.crop((0, 0, grid.width, label_height(size)))).copy())
    assert (strip < 128).sum() > 20  # black letters on the white strip


def test_a_study_of_a_conditional_generator_has_a_table_per_class(cond, tmp_path):
    from nada_utils.adapt.config import make_config
    from nada_utils.experiments.study import run_study, write_study

    base = make_config("tiny", generator=str(cond), steps=4, checkpoint_every=0, sample_every=0, eval_samples=6,
                       source_text="a photo of a {class}", target_text="a sketch of a {class}", class_names=NAMES.split(","))
    rows = run_study(base, ["last:1", "all"], tmp_path / "study", progress=False, log=lambda _: None)
    assert all(set(r["per_class"]) == {"0", "1", "2"} and "clip_gain" in r for r in rows)
    table = write_study(rows, tmp_path / "study", class_names=NAMES.split(","))["table"].read_text()
    assert "Per class" in table and "| layers (clip_gain) | cat | dog | bird |" in table and "| `last:1` |" in table
