"""The notebooks' anatomy and hygiene, and the widgets -> TrainConfig path they share with the CLI.

Executing them is nbval's job (`pytest --nbval-lax`, which the README's test command runs); these
tests check what execution cannot: committed without outputs, one parameters cell whose fast mode
switches to the mini world, cells that only call the library, and a Colab install that never
reinstalls torch or clones a repository.
"""

import ast
import json
import re
from pathlib import Path

import pytest
import tomllib
import torch

from nada_utils.adapt.config import TrainConfig, make_config
from nada_utils.cli import main
from nada_utils.errors import NadaError
from nada_utils.notebook.controls import TrainControls, layer_spec, split_spec

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
REPO = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["urls"]["Repository"].removeprefix("https://github.com/")


def cells(path, kind="code"):
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == kind]


def source(cell) -> str:
    return "".join(cell["source"])


def python_of(text: str) -> str:
    """Cell source as plain Python (IPython's %magic lines become no-ops) for the AST checks."""
    return "\n".join(re.sub(r"^(\s*)%.*$", r"\1pass", line) for line in text.splitlines())


def test_the_suite_is_there():
    assert {p.stem for p in NOTEBOOKS} >= {"train", "inference", "block_importance"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_committed_without_outputs(path):
    for cell in cells(path):
        assert cell["outputs"] == [] and cell["execution_count"] is None, f"{path.name}: clear outputs before committing"
    assert "widgets" not in json.loads(path.read_text())["metadata"], f"{path.name}: widget state is an output"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_anatomy(path):
    code = cells(path)
    first_md = source(cells(path, "markdown")[0])
    assert f"colab.research.google.com/github/{REPO}/blob/main/notebooks/{path.name}" in first_md
    setup = source(code[0])
    assert "google.colab" in setup and "--no-deps" in setup and f"github.com/{REPO}/archive" in setup
    assert "nb.setup()" in setup
    pip_line = next(line for line in setup.splitlines() if "%pip install" in line)
    assert not any(t.strip('"').startswith("torch") for t in pip_line.split()), "never reinstall Colab's torch"
    assert "git clone" not in setup and "git+" not in setup
    tagged = [c for c in code if "parameters" in c["metadata"].get("tags", [])]
    assert len(tagged) == 1 and tagged[0] is code[1], "one parameters cell, right after setup"
    params = source(tagged[0])
    assert "#@param" in params and "nb.fast_mode()" in params
    for cell in code:
        text = source(cell)
        limit = 14 if cell is tagged[0] else 12  # the parameters cell: one form field a line, no logic
        assert len(text.splitlines()) <= limit, f"{path.name}: a cell over {limit} lines belongs in nada_utils:\n{text}"
        tree = ast.parse(python_of(text))
        banned = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda, ast.For, ast.While)
        assert not any(isinstance(n, banned) for n in ast.walk(tree)), f"{path.name}: logic belongs in nada_utils:\n{text}"
        if cell is not code[0] and cell is not tagged[0]:
            assert "nb." in text, f"{path.name}: every cell calls the library:\n{text}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
@pytest.mark.parametrize("fast", ["1", "0"])
def test_parameters_cell_defaults_and_fast_mode(path, fast, monkeypatch):
    from nada_utils import notebook as nb

    monkeypatch.setenv("NADA_FAST", fast)
    params = next(c for c in cells(path) if "parameters" in c["metadata"].get("tags", []))
    values = {"nb": nb}
    exec(source(params), values)
    if "preset" in values:  # train and block_importance: the real thing, or the mini world in fast mode
        assert values["preset"] == ("mini-sketch" if fast == "1" else "ffhq-sketch")
        cfg = make_config(values["preset"])
        assert cfg.clip_models == (("mini-clip-2-robust",) if fast == "1" else ("ViT-B/32", "ViT-B/16"))
    if path.stem == "train" and fast == "0":  # the form as it opens: nothing but the preset
        assert (values["source_text"], values["target_text"], values["strategy"], values["steps"]) == ("", "", "", 0)
    if path.stem == "inference":
        assert (values["adapted"] == "") == (fast == "1")
    if path.stem == "inversion" and fast == "1":
        # The quick run adapts the second world's generator: the photo and the editing CLIP are that world's.
        from nada_utils.images import load_image
        from nada_utils.mini_world import world
        from nada_utils.models.rendering import held_out_z

        assert make_config("mini-sketch").generator == "mini-photo-2" and values["clip_model"] == "mini-clip-2"
        scene = world.scene_from_z(held_out_z(3, 128))[2:]
        photo = load_image(values["image_path"], 64)
        assert (photo - world.render(scene, "photo")[0]).abs().max() < 2 / 255


def _form_config(preset: str, **changed) -> tuple[TrainConfig, TrainConfig]:
    """Run train.ipynb's settings cell, pick `preset` in its dropdown, change the `changed` fields, then run
    its config cell: (the config the form makes, the one its widgets hand to training)."""
    from nada_utils import notebook as nb

    code = cells(ROOT / "notebooks" / "train.ipynb")
    values = {"nb": nb}
    exec(source(next(c for c in code if "parameters" in c["metadata"].get("tags", []))), values)
    values.update(preset=preset, **changed)
    exec(source(next(c for c in code if "nb.form_config(" in source(c))), values)
    return values["cfg"], values["controls"].config()


@pytest.mark.parametrize("preset", ["tiny", "mini-sketch", "mini-cartoon", "mini-night", "mini-sketch-cond",
                                    "cifar10-sketch", "cifar10-anime", "ffhq-sketch"])
def test_the_train_form_keeps_its_preset(preset, monkeypatch):
    monkeypatch.setenv("NADA_FAST", "0")
    assert _form_config(preset) == (make_config(preset), make_config(preset))


@pytest.mark.parametrize("preset,changed,field,value", [
    ("mini-night", {"steps": 7}, "steps", 7),
    ("cifar10-sketch", {"target_text": "an anime drawing of a {class}"}, "target_text", "an anime drawing of a {class}"),
    ("mini-sketch", {"k": 2}, "layers", "last:2"),  # k alone changes the preset's own K
    ("mini-cartoon", {"strategy": "last"}, "layers", "last:4"),
    ("mini-sketch", {"strategy": "auto", "k": 3}, "layers", "auto:3"),
    ("tiny", {"lr": 0.01}, "lr", 0.01),
    ("mini-sketch", {"generator": "mini-photo-2"}, "generator", "mini-photo-2"),
])
def test_the_train_form_changes_only_the_fields_filled_in(preset, changed, field, value, monkeypatch):
    monkeypatch.setenv("NADA_FAST", "0")
    cfg, handed = _form_config(preset, **changed)
    want = make_config(preset).to_dict()
    differs = {k for k, v in cfg.to_dict().items() if v != want[k]}
    assert getattr(cfg, field) == value and differs <= {field}, differs
    assert handed == cfg


def test_the_train_form_offers_the_layer_vocabulary():
    from nada_utils.adapt.layer_specs import LAYER_SPECS, PHASES

    params = source(next(c for c in cells(ROOT / "notebooks" / "train.ipynb") if "parameters" in c["metadata"].get("tags", [])))
    offered = json.loads(re.search(r'^strategy = .*#@param (\[.*\])$', params, re.M).group(1))
    kinds = [form.partition(":")[0] for form, _ in LAYER_SPECS if form not in ("phase:NAME", "layers:A,B")]
    assert offered == ["", *kinds, *[f"phase:{p}" for p in PHASES if p != "all"]]


def test_widgets_fill_the_cli_config(tmp_path, capsys):
    controls = TrainControls(make_config("tiny"))
    controls.source.value = "a photo of a face"
    controls.target.value = "a pencil sketch"
    controls.strategy.value = "last:"
    controls.k.value = 2
    controls.steps.value = 3
    controls.lr.value = 0.005
    cfg = controls.config()
    assert isinstance(cfg, TrainConfig)
    assert (cfg.source_text, cfg.target_text, cfg.layers, cfg.steps, cfg.lr) == ("a photo of a face", "a pencil sketch", "last:2", 3, 0.005)
    assert cfg.generator == "random:tiny" and cfg.batch == make_config("tiny").batch  # the rest is the base's
    assert "--layers last:2" in controls.spec.value
    # The same settings through the CLI write the same config.
    out = tmp_path / "run"
    assert main(["train", "--preset", "tiny", "--source", "a photo of a face", "--target", "a pencil sketch",
                 "--layers", "last:2", "--steps", "3", "--lr", "0.005", "--out", str(out), "--quiet"]) == 0
    assert TrainConfig.from_dict(json.loads((out / "config.json").read_text())) == cfg


def test_widgets_k_only_for_strategies_that_take_it():
    controls = TrainControls(make_config("tiny", layers="auto:3"))
    assert (controls.strategy.value, controls.k.value, controls.k.disabled) == ("auto:", 3, False)
    controls.strategy.value = "phase:texture"
    assert controls.k.disabled and controls.config().layers == "phase:texture"
    assert TrainControls(make_config("tiny"), layers=False).config().layers == "all"


def test_widgets_offer_the_classes_of_a_conditional_generator_with_names():
    assert not TrainControls(make_config("tiny")).classes  # no classes, no class widgets
    controls = TrainControls(make_config("cifar10-sketch"))  # only the registry is read: nothing is downloaded
    assert [label for label, _ in controls.class_picker.options][:3] == ["airplane", "automobile", "bird"]
    assert controls.config().classes is None  # every class picked: the default, uniform over all
    controls.class_picker.value = (2, 5)
    assert controls.config().classes == (2, 5)
    controls.class_picker.value = ()
    with pytest.raises(NadaError, match="pick at least one"):
        controls.config()


def test_a_notebook_picks_a_class_by_number_or_name(capsys):
    from conftest import make_tiny_generator

    from nada_utils.notebook.viewers import pick_class

    G = make_tiny_generator(c_dim=3, seed=0)
    assert pick_class(G, "") == [0, 1, 2] and pick_class(G, "2") == 2  # empty: the seeds go through every class
    from nada_utils.models.rendering import render_seeds

    mixed = render_seeds(G, range(4), class_idx=[0, 1, 2])
    assert torch.allclose(mixed[3], render_seeds(G, [3], class_idx=0)[0], atol=1e-5)  # seed 3: class 0 again
    assert torch.allclose(mixed[1], render_seeds(G, [1], class_idx=1)[0], atol=1e-5)
    assert not torch.allclose(mixed[1], render_seeds(G, [1], class_idx=0)[0], atol=1e-3)
    with pytest.raises(NadaError, match="a number from 0 to 2"):
        pick_class(G, "bird")  # this one has no names
    G.source = "cifar10"  # as loaded from the registry, whose entry names the classes
    G.c_dim = 10
    assert pick_class(G, "bird") == 2 and "(bird)" in capsys.readouterr().out
    with pytest.raises(NadaError, match="no classes"):
        pick_class(make_tiny_generator(seed=0), "2")
    assert pick_class(make_tiny_generator(seed=0), "") is None


def test_widget_values_are_checked_by_the_config():
    controls = TrainControls(make_config("tiny"))
    controls.target.value = "  "
    with pytest.raises(NadaError, match="must not be empty"):
        controls.config()


@pytest.mark.parametrize("strategy,k,spec", [("all", 3, "all"), ("last", 3, "last:3"), ("last:", 2, "last:2"),
                                             ("auto", 8, "auto:8"), ("gradnorm", 1, "gradnorm:1"), ("phase:shape", 5, "phase:shape")])
def test_layer_spec(strategy, k, spec):
    assert layer_spec(strategy, k) == spec
    assert layer_spec(*[(s, v or 1) for s, v in [split_spec(spec)]][0]) == spec


def _execute(path: Path, overrides: str, workdir: Path) -> None:
    """Run a notebook in a fresh kernel as nbval does, with `overrides` as a cell right after the parameters
    cell (what a user typing into the form does); a cell that raises fails the test with its traceback."""
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    at = next(i for i, c in enumerate(nb.cells) if "parameters" in c.metadata.get("tags", []))
    nb.cells.insert(at + 1, nbformat.v4.new_code_cell(overrides))
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()


def test_the_notebooks_adapt_and_show_a_stylegan3(tmp_path, monkeypatch):
    """The train notebook with its `generator` field set to a StyleGAN3 trains, evaluates and exports
    it; the inference notebook then shows that run beside the frozen StyleGAN3 (grids, sliders, video)."""
    monkeypatch.setenv("NADA_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("NADA_ROOT", str(tmp_path / "drive"))
    _execute(ROOT / "notebooks" / "train.ipynb", 'preset, generator, strategy, k, steps, run_name = '
             '"tiny", "random:sg3-t-tiny", "last", 2, 2, "sg3"', tmp_path)
    exported = tmp_path / "drive" / "exports" / "sg3.pt"
    assert json.loads((tmp_path / "work" / "runs" / "sg3" / "config.json").read_text())["generator"] == "random:sg3-t-tiny"
    assert torch.load(exported, weights_only=True)["nada"]["model"] == "stylegan3"
    _execute(ROOT / "notebooks" / "inference.ipynb", 'adapted, seeds, video_seconds = "sg3", "0-3", 1', tmp_path)
    assert (tmp_path / "drive" / "results" / "inference" / "compare.png").is_file()
