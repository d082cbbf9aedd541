"""Tests for the weight registry: entries are well formed and path logic follows the environment."""

import dataclasses
import json
import re
import warnings
from pathlib import Path

import pytest

from nada_utils import load_generator

from nada_utils.errors import NadaError
from nada_utils.weights import registry

HEX64 = re.compile(r"[0-9a-f]{64}")

EXPECTED_NAMES = {
    "ffhq-1024",
    "afhq-cat",
    "afhq-dog",
    "afhq-wild",
    "metfaces",
    "cifar10",
    "church-256",
    "car-512",
    "horse-256",
    "ir-se50",
    "e4e-ffhq",
    "vgg16",
    "lpips-vgg",
    "mini-judge",
    "mini-clip-2",
    "mini-photo-2",
    "mini-clip-2-p32",
    "mini-clip-2-robust",
    # NVlabs' StyleGAN3 pickles (configs T and R)
    *(f"stylegan3-{cfg}-{data}" for cfg in "tr" for data in ("ffhq", "ffhqu", "afhqv2", "metfacesu")),
    # OpenAI's CLIP models, under clip.available_models()' names
    "RN50", "RN101", "RN50x4", "RN50x16", "RN50x64", "ViT-B/32", "ViT-B/16", "ViT-L/14", "ViT-L/14@336px",
}


def test_registry_has_the_expected_names():
    assert set(registry.REGISTRY) == EXPECTED_NAMES


@pytest.mark.parametrize("name", sorted(EXPECTED_NAMES))
def test_entry_is_well_formed(name):
    spec = registry.REGISTRY[name]
    assert spec.name == name
    assert spec.kind in registry.KINDS
    assert spec.url or spec.gdrive_id or spec.bundled or spec.restore, \
        "every entry needs a download source, ships bundled, or says how to restore it"
    assert spec.url is None or spec.url.startswith("https://")
    assert spec.url is None or spec.url.endswith("/" + spec.filename)
    assert spec.sha256 is None or HEX64.fullmatch(spec.sha256)
    assert spec.size is None or spec.size > 0
    assert "/" not in spec.filename and spec.description


def test_known_facts():
    ffhq = registry.REGISTRY["ffhq-1024"]
    assert ffhq.size == 381_462_551 and ffhq.gdrive_id == "1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT"
    assert ffhq.url.startswith("https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/")
    assert registry.REGISTRY["ir-se50"].size == 175_367_323
    assert registry.REGISTRY["e4e-ffhq"].size == 1_201_649_680
    assert "64:448" in registry.REGISTRY["car-512"].notes


def test_clip_entries_are_the_ones_clip_load_knows():
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="pkg_resources is deprecated")
        import clip.clip

    # The URL carries the sha256 that clip.load checked; the registry checks the same digest.
    for name, url in clip.clip._MODELS.items():
        spec = registry.REGISTRY[name]
        assert spec.kind == "clip" and spec.url == url and spec.sha256 == url.split("/")[-2]


def test_specs_are_frozen():
    with pytest.raises(dataclasses.FrozenInstanceError):
        registry.REGISTRY["ffhq-1024"].size = 1


def test_unknown_kind_is_rejected():
    with pytest.raises(ValueError):
        registry.WeightSpec("x", "x.bin", "generator-bogus", None, "https://example.invalid/x.bin", None, None, "x")


def test_cache_dir_reads_env_at_call_time(monkeypatch, tmp_path):
    monkeypatch.delenv("NADA_CACHE", raising=False)
    assert registry.cache_dir() == Path.home() / ".cache" / "nada"
    monkeypatch.setenv("NADA_CACHE", str(tmp_path))
    assert registry.cache_dir() == tmp_path
    assert registry.local_path("ffhq-1024") == tmp_path / "stylegan2-ffhq-config-f.pt"


def test_is_present(monkeypatch, tmp_path):
    monkeypatch.setenv("NADA_CACHE", str(tmp_path))
    assert not registry.is_present("metfaces")
    (tmp_path / "metfaces.pkl").write_bytes(b"x")
    assert registry.is_present("metfaces")


def test_unknown_name_lists_known_names():
    with pytest.raises(NadaError) as info:
        registry.get_spec("ffhq-2048")
    message = str(info.value)
    assert "\n" not in message and "ffhq-2048" in message
    assert all(name in message for name in EXPECTED_NAMES)
    assert "path" in message


def test_mirror_url(monkeypatch):
    spec = registry.REGISTRY["afhq-dog"]
    monkeypatch.delenv("NADA_MIRROR", raising=False)
    assert registry.mirror_url(spec) is None
    monkeypatch.setenv("NADA_MIRROR", "http://127.0.0.1:9/weights/")
    assert registry.mirror_url(spec) == "http://127.0.0.1:9/weights/afhqdog.pkl"


@pytest.mark.parametrize("name", ["mini-judge", "mini-clip-2", "mini-photo-2", "mini-clip-2-robust"])
def test_bundled_files_ship_and_match_their_checksums(name):
    from nada_utils.weights.download import fetch, sha256_file

    spec = registry.REGISTRY[name]
    path = fetch(name)
    assert path.is_file() and path.stat().st_size == spec.size and sha256_file(path) == spec.sha256


def test_the_first_mini_worlds_models_are_refused_in_one_line(tmp_path, capsys):
    from nada_utils.cli import main
    from nada_utils.models.clip_models import load_clip
    from nada_utils.models.generator_io import load_generator

    with pytest.raises(NadaError, match=r"mini-photo \(the first mini world's generator\) was retired after commit "
                                        r"7fbe104; to load it, check out that commit \(git checkout 7fbe104\)"):
        load_generator("mini-photo")
    with pytest.raises(NadaError, match=r"mini-clip \(the first mini world's CLIP\) was retired after commit 7fbe104"):
        load_clip("mini-clip")
    # A run dir of that world (its generator, or only its CLIP): every command that reads it says so,
    # in one line, exit 2.
    for generator, clip in (("mini-photo", "mini-clip"), ("mini-photo-2", "mini-clip")):
        run = tmp_path / f"old-run-{generator}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps({"generator": generator, "clip_models": [clip], "clip_weights": [1.0],
                                                     "ground_truth": "mini-world:sketch"}))
        for args in (["train", "--out", str(run), "--resume"], ["evaluate", "--run", str(run)],
                     ["generate", "--checkpoint", str(run), "--seeds", "0", "--out", str(tmp_path / "g.png")]):
            assert main(args) == 2
            err = capsys.readouterr().err.strip().splitlines()
            assert len(err) == 1 and f"{run} was made with {'mini-photo' if generator == 'mini-photo' else clip} (" in err[0]
            assert "retired after commit 7fbe104; to load this run" in err[0] and "git checkout 7fbe104" in err[0], err
    # A new run that names one is refused before it writes anything.
    assert main(["train", "--generator", "mini-photo", "--clip", "mini-clip-2", "--out", str(tmp_path / "new")]) == 2
    assert "mini-photo (the first mini world's generator) was retired" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_the_conditional_mini_generator_names_its_classes_as_the_world_does():
    from nada_utils.mini_world.world import SHAPES

    spec = registry.REGISTRY["mini-photo-2"]
    assert spec.class_names == SHAPES and load_generator("mini-photo-2").c_dim == len(SHAPES)


def test_the_bundled_models_stay_small():
    bundled = [spec.size for spec in registry.REGISTRY.values() if spec.bundled]
    assert sum(bundled) < 40e6  # every mini model together under 40 MB (docs/MINI_WORLD.md, "The world")


def test_a_model_that_left_the_package_says_how_to_get_it_back(tmp_path, monkeypatch):
    from nada_utils.errors import NadaError
    from nada_utils.weights.download import fetch

    monkeypatch.setenv("NADA_CACHE", str(tmp_path))
    with pytest.raises(NadaError, match=r"no longer shipped; restore the file with git show fe3bccb:.*put it at"):
        fetch("mini-clip-2-p32")
