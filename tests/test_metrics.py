"""The mini world's metrics and judge: the truth scores well, and every cheap cheat scores badly."""

from pathlib import Path

import pytest
import torch

from nada_utils.mini_world.judge import judge, load_judge
from nada_utils.mini_world.metrics import edge_f1, edges, region_gap_closed, score
from nada_utils.mini_world.world import ALL_DOMAINS, SCENE_DIM, SHAPES, render, shape_index, shape_mask


@pytest.fixture(scope="module")
def scenes():
    return torch.rand(96, SCENE_DIM, generator=torch.Generator().manual_seed(11))


@pytest.fixture(scope="module")
def judge_model():
    return load_judge()


def test_the_judge_names_domain_and_shape_of_renders_it_never_saw(judge_model, scenes):
    for domain in ALL_DOMAINS:
        domains, shapes = judge(judge_model, render(scenes, domain))
        assert sum(d == domain for d in domains) / len(domains) >= 0.98, domain
        if domain != "blank":
            truth = [SHAPES[i] for i in shape_index(scenes).tolist()]
            assert sum(s == t for s, t in zip(shapes, truth)) / len(shapes) >= 0.95, domain


@pytest.mark.parametrize("target", ["sketch", "cartoon", "night"])
def test_cheats_score_badly_and_the_truth_well(judge_model, scenes, target):
    photo = render(scenes, "photo")
    truth = render(scenes, target)
    cheats = {
        "blank page": render(scenes, "blank"),
        "white page": torch.ones_like(photo),
        "copy of the input": photo,
        "noise": torch.rand(photo.shape, generator=torch.Generator().manual_seed(0)) * 2 - 1,
        "black and white photo": render(scenes, "bw-photo"),
    }
    right = score(photo, truth, scenes, target, judge_model)
    assert right["judged_target"] >= 0.95 and right["shape_kept"] >= 0.95 and right["edge_f1"] == 1.0
    assert right["gap_closed"] == pytest.approx(1.0)
    for name, images in cheats.items():
        s = score(photo, images, scenes, target, judge_model)
        # Every cheat fails the headline figure (targets ask >= 0.8 or 0.9). The judge never saw noise, so
        # it names some of it at random (about a fifth "cartoon"); renders of other domains it names right.
        assert s["judged_target"] <= (0.3 if name == "noise" else 0.05), (name, s)
        if name in ("blank page", "white page", "noise"):
            assert s["edge_f1"] < 0.35, (name, s)  # no marks where the truth has them (targets ask >= 0.5)
        if name == "copy of the input":
            assert s["edge_f1"] == s["edge_f1_frozen"] and s["gap_closed"] == 0.0


def test_edges_have_no_frame_and_f1_tolerates_one_pixel():
    flat = torch.full((2, 3, 32, 32), 0.8)
    assert not edges(flat).any()  # reflect padding: a uniform page has no edges, at the border either
    img = -torch.ones(1, 3, 32, 32)
    img[..., 8:24, 8:24] = 1
    assert edge_f1(img, img) == 1.0
    assert edge_f1(torch.roll(img, 1, dims=-1), img) == 1.0  # one pixel off: still within tolerance
    assert edge_f1(torch.roll(img, 4, dims=-1), img) < 0.6
    assert edge_f1(flat * 2 - 1, img) == 0.0


def test_gap_closed_scores_shape_and_page_apart(scenes):
    frozen, target = render(scenes[:8], "photo"), render(scenes[:8], "cartoon")
    mask = shape_mask(scenes[:8])
    page_only = torch.where(mask > 0.5, frozen, target)  # the page made right, the shape left as it was
    g = region_gap_closed(frozen, page_only, target, mask)
    assert g["gap_closed_page"] == pytest.approx(1.0) and g["gap_closed_shape"] == pytest.approx(0.0)
    assert g["gap_closed"] == pytest.approx(0.5)


def test_the_world_is_a_ground_truth_a_config_can_name():
    from nada_utils import NadaError
    from nada_utils.adapt.config import make_config
    from nada_utils.measure.ground_truth import evaluate_ground_truth
    from nada_utils.models.generator_io import load_generator

    G = load_generator("mini-photo-2")  # the plumbing, not the figures
    metrics = evaluate_ground_truth("mini-world:sketch", G, G)
    assert {"judged_target", "shape_kept", "edge_f1", "edge_f1_frozen", "gap_closed"} <= set(metrics)
    assert metrics["edge_f1"] == metrics["edge_f1_frozen"] and metrics["gap_closed"] == 0.0  # G_train == G_frozen
    assert make_config("tiny", ground_truth="mini-world:night").ground_truth == "mini-world:night"
    # Run dirs made while the world had a version in its name still score, under that name.
    assert evaluate_ground_truth("mini-world-2:sketch", G, G) == metrics
    with pytest.raises(NadaError, match="mini-world has no domain 'blank'"):
        evaluate_ground_truth("mini-world:blank", G, G)


def test_a_run_that_names_the_world_by_its_earlier_name_resumes_and_scores(tmp_path):
    """Run dirs made before the first world was retired say mini-world-2:DOMAIN; today's presets say
    mini-world:DOMAIN. Resuming one with today's preset is the same run, scored as before."""
    import json

    from nada_utils.adapt.config import make_config
    from nada_utils.adapt.trainer import train
    from nada_utils.measure.ground_truth import canonical_ground_truth

    assert canonical_ground_truth("mini-world-2:sketch") == "mini-world:sketch" == canonical_ground_truth("mini-world:sketch")
    run = tmp_path / "old"
    small = dict(n_samples=2, sample_every=0, checkpoint_every=1, eval_samples=0, batch=2)
    train(make_config("mini-sketch", steps=1, ground_truth="mini-world-2:sketch", **small), run, progress=False,
          log=lambda m: None)
    assert json.loads((run / "config.json").read_text())["ground_truth"] == "mini-world-2:sketch"
    first = json.loads((run / "metrics.json").read_text())
    train(make_config("mini-sketch", steps=2, **small), run, resume=True, progress=False, log=lambda m: None)
    assert json.loads((run / "config.json").read_text())["steps"] == 2
    second = json.loads((run / "metrics.json").read_text())
    assert {"judged_target", "shape_kept", "edge_f1"} <= set(first) and second["domain"] == first["domain"] == "sketch"


def test_a_file_that_is_no_judge_is_one_error_line(tmp_path):
    from nada_utils import NadaError

    (tmp_path / "cut.pt").write_bytes((Path(load_judge.__code__.co_filename).parent / "weights" / "mini_judge.pt")
                                      .read_bytes()[:5000])
    torch.save({"weight": torch.zeros(3)}, tmp_path / "other.pt")
    for name, needle in (("cut.pt", "truncated or not a PyTorch checkpoint"), ("other.pt", "is not a mini-world judge"),
                         ("missing.pt", "no judge file")):
        with pytest.raises(NadaError, match=needle):
            load_judge(str(tmp_path / name))


class _Oracle(torch.nn.Module):
    """A 'conditional generator' that draws the true render of scene_from_z(z, shape = its class)."""

    def __init__(self, domain, c_dim=len(SHAPES)):
        super().__init__()
        self.domain, self.z_dim, self.c_dim = domain, 128, c_dim
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, z, c=None, **_):
        from nada_utils.mini_world.world import scene_from_z

        return render(scene_from_z(z, c.argmax(1)), self.domain)


def test_a_conditional_generators_class_is_the_shape_and_every_shape_gets_its_row(judge_model):
    from nada_utils.errors import NadaError
    from nada_utils.measure.ground_truth import evaluate_ground_truth

    photo, sketch = _Oracle("photo"), _Oracle("sketch")
    m = evaluate_ground_truth("mini-world:sketch", photo, sketch, classes=[0, 2])
    # Scenes take their shape from the label, not from z: a judge that sees the label's shape agrees.
    assert m["judged_target"] >= 0.95 and m["shape_kept"] >= 0.95 and m["shape_kept_frozen"] >= 0.95
    assert set(m["per_class"]) == {"circle", "triangle"}
    assert m["per_class"]["circle"]["n"] == m["per_class"]["triangle"]["n"] == 64
    assert all(row["edge_f1"] == 1.0 for row in m["per_class"].values())
    with pytest.raises(NadaError, match="classes are its shapes"):
        evaluate_ground_truth("mini-world:sketch", _Oracle("photo", 10), _Oracle("sketch", 10))
