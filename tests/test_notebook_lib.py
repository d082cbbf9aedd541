"""The library side of the notebooks: sessions, live training with resume from Drive, loading and viewing."""

import shutil

import pytest
import torch
from PIL import Image

from nada_utils import notebook as nb
from nada_utils.adapt.config import make_config
from nada_utils.errors import NadaError
from nada_utils.images import png_bytes
from nada_utils.models.rendering import render_seeds


@pytest.fixture
def session(tmp_path, monkeypatch):
    monkeypatch.setenv("NADA_WORKDIR", str(tmp_path / "work"))
    monkeypatch.setenv("NADA_ROOT", str(tmp_path / "drive"))
    monkeypatch.setenv("NADA_FAST", "1")
    return nb.setup()


def tiny(steps=4, **kw):
    return make_config("tiny", steps=steps, sample_every=2, checkpoint_every=2, **kw)


def test_setup_paths(session, tmp_path, monkeypatch, capsys):
    assert session.fast and session.device == "cpu" and not session.in_colab
    assert session.run_dir("x") == tmp_path / "work" / "runs" / "x"
    assert session.sync_dir("x") == tmp_path / "drive" / "runs" / "x"
    monkeypatch.delenv("NADA_ROOT")
    monkeypatch.setenv("NADA_FAST", "0")
    plain = nb.setup()
    assert plain.mirror is None and plain.sync_dir("x") is None and not plain.fast
    assert "not mirrored" in capsys.readouterr().out


class FakeDisplay:
    """Records what a notebook would show: display(obj, display_id=True) -> a handle whose updates are kept."""

    def __init__(self):
        self.shown = []

    def __call__(self, obj, display_id=None):
        self.shown.append(obj)
        return self

    def update(self, obj):
        self.shown.append(obj)


def test_train_live_shows_grids_and_resumes_from_the_mirror(session, capsys, monkeypatch):
    import IPython.display

    fake = FakeDisplay()
    monkeypatch.setattr(IPython.display, "display", fake)
    first = nb.train_live(tiny(steps=2), "run", session)
    captions = [o.data for o in fake.shown if isinstance(o, IPython.display.HTML)]
    images = [o for o in fake.shown if isinstance(o, IPython.display.Image)]
    assert any("step 2: top row G_frozen" in c for c in captions)
    assert len(images) == 2 and images[-1].data == (first.run_dir / "samples" / "step_000002.png").read_bytes()
    assert (session.sync_dir("run") / "checkpoints" / "step_000002.pt").is_file()
    shutil.rmtree(session.runs)  # the VM was wiped; Drive kept the mirror
    again = nb.train_live(tiny(steps=4), "run", session, show=False)
    assert "resuming" in capsys.readouterr().out and again.run_dir == first.run_dir
    straight = nb.train_live(tiny(steps=4), "straight", session, show=False)
    assert again.generator.read_bytes() == straight.generator.read_bytes()


def test_changed_settings_name_the_run(session):
    nb.train_live(tiny(steps=2), "run", session, show=False)
    with pytest.raises(NadaError, match="run 'run' already exists with other settings.*target_text"):
        nb.train_live(tiny(steps=2, target_text="a cartoon"), "run", session, show=False)
    with pytest.raises(NadaError, match="bad run name"):
        nb.train_live(tiny(), "../elsewhere", session, show=False)


def test_load_view_interpolate_export(session, tmp_path, capsys):
    run = nb.train_live(tiny(steps=2), "run", session, show=False)
    G_frozen, adapted = nb.load_adapted("run", session)
    assert list(adapted) == ["run"] and G_frozen.source == "random:tiny"
    seeds = [0, 1, 2]
    grid = nb.compare_grid(G_frozen, adapted, seeds, truncation=0.7)
    assert grid.shape[1] == 2 * 32 + 3 * 2 and grid.shape[2] == 3 * 32 + 4 * 2  # 2 rows, 3 columns of 32 px
    nb.show_compare(G_frozen, adapted, seeds, save_to=session.results / "compare.png")
    assert Image.open(session.results / "compare.png").size == (grid.shape[2], grid.shape[1])

    view = nb.interpolation_view(G_frozen, adapted["run"], seeds, alpha=0.5)
    middle = view.image.value
    view.slider.value = 0.0  # what the browser's slider sends
    frozen_only = png_bytes(nb.compare_grid(G_frozen, {}, seeds, truncation=0.7))
    assert view.image.value != middle and view.image.value == frozen_only
    trunc = nb.truncation_view(G_frozen, adapted, seeds)
    before = trunc.image.value
    trunc.slider.value = 0.0
    assert trunc.image.value != before

    nb.save_interpolation(G_frozen, adapted["run"], seeds, tmp_path / "interp.png", alphas=(0, 1))
    rows = Image.open(tmp_path / "interp.png")
    assert rows.size == (grid.shape[2], grid.shape[1])
    nb.show_losses(run)
    assert (run.run_dir / "loss.png").is_file()
    summary = nb.show_evaluation(run)
    assert summary["best"]["step"] in [r["step"] for r in summary["rows"]] and (run.run_dir / "evaluation.png").is_file()
    dest = nb.export_generator(run, session)
    assert dest == session.mirror / "exports" / "run.pt" and dest.read_bytes() == run.generator.read_bytes()


def test_load_adapted_errors(session, tmp_path):
    with pytest.raises(NadaError, match="no adapted generator 'nothing'.*train it first"):
        nb.load_adapted("nothing", session)
    run = nb.train_live(tiny(steps=2), "run", session, show=False)
    bare = tmp_path / "bare.pt"
    shutil.copy(run.generator, bare)
    with pytest.raises(NadaError, match="cannot tell which generator.*frozen="):
        nb.load_adapted(str(bare), session)
    G_frozen, adapted = nb.load_adapted(f"{bare}, run ".split(","), session, frozen="random:tiny")
    z = torch.randn(1, G_frozen.z_dim)
    assert list(adapted) == [str(bare), "run"] and not torch.equal(G_frozen(z), adapted[str(bare)](z))
    with pytest.raises(NadaError, match="no adapted generator given"):
        nb.load_adapted(" , ".split(","), session)


def test_render_seeds_is_seed_stable():
    from conftest import make_tiny_generator

    G = make_tiny_generator()
    torch.testing.assert_close(render_seeds(G, [3, 5], batch=1), render_seeds(G, [5, 3])[[1, 0]])
    with pytest.raises(NadaError, match="truncation must be in"):
        render_seeds(G, [0], truncation_psi=2.0)


def test_a_failing_render_shows_its_error_in_the_view():
    import ipywidgets as w

    from nada_utils.notebook.viewers import _SliderView

    def render(value):
        if value > 0.5:
            raise NadaError("truncation must be in [0, 1]")
        return torch.zeros(3, 8, 8)

    view = _SliderView(w.FloatSlider(value=0.0, max=1.0), render, "caption")
    good = view.image.value
    view.slider.value = 1.0
    assert "error: NadaError: truncation must be in [0, 1]" in view.caption.value and view.image.value == good
    view.slider.value = 0.2
    assert view.caption.value == "caption"
