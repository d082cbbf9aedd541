"""Inverting a user's image (`invert`) and editing its latent with text (`edit`): files, metrics, loss choice, bad input."""

import json

import pytest
import torch
from PIL import Image

from nada_utils.cli import main
from nada_utils.images import save_image
from nada_utils.mini_world.world import domain_prompt, render, scene_from_z
from nada_utils.models.generator_io import load_generator, save_generator
from nada_utils.models.rendering import held_out_z

MINI = ["--generator", "mini-photo-2", "--clip", "mini-clip-2", "--device", "cpu"]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    """A held-out mini-world photo, saved as a 200x150 JPEG (another size and format: cropped and resized)."""
    folder = tmp_path_factory.mktemp("photo")
    png = save_image(render(scene_from_z(held_out_z(1, 128)), "photo", 64)[0], folder / "photo.png")
    Image.open(png).resize((200, 150)).save(folder / "photo.jpg")
    return folder / "photo.jpg"


def test_invert_writes_latents_images_and_metrics(tmp_path, photo, capsys):
    same = save_generator(load_generator("mini-photo-2"), tmp_path / "same.pt")  # an "adapted" copy that did not move
    code = main(["invert", "--image", str(photo), "--steps", "40", "--out", str(tmp_path / "inv"),
                 "--adapted", str(same), *MINI])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "inv" / "metrics.json").read_text())
    # No LPIPS weights in the test cache: the CLIP + pixel fallback is used, and both the output and metrics say so.
    assert metrics["loss"] == "pixel MSE + CLIP features (LPIPS fallback)" and "fetch vgg16 lpips-vgg" in out
    assert metrics["psnr"] > 15 and 0.5 < metrics["clip_similarity"] <= 1 and metrics["latent"] == "w+"
    assert metrics["generator"] == "mini-photo-2" and metrics["adapted"] == [str(same)]
    assert {p.name for p in (tmp_path / "inv").iterdir()} == {"input.png", "reconstruction.png", "adapted_0.png",
                                                            "side_by_side.png", "latents.pt", "metrics.json"}
    assert (tmp_path / "inv" / "adapted_0.png").read_bytes() == (tmp_path / "inv" / "reconstruction.png").read_bytes()
    assert "reconstruction PSNR" in out


def test_invert_uses_lpips_when_its_weights_are_cached(tmp_path, photo, capsys):
    from test_lpips import put_in_cache, random_weights

    put_in_cache(random_weights())
    assert main(["invert", "--image", str(photo), "--steps", "3", "--out", str(tmp_path / "inv"), *MINI]) == 0
    metrics = json.loads((tmp_path / "inv" / "metrics.json").read_text())
    assert metrics["loss"] == "LPIPS-VGG" and metrics["lpips"] > 0 and "clip_similarity" not in metrics
    assert main(["invert", "--image", str(photo), "--steps", "3", "--loss", "pixel", "--out", str(tmp_path / "px"),
                 *MINI]) == 0
    assert json.loads((tmp_path / "px" / "metrics.json").read_text())["loss"] == "pixel MSE"


def test_adapted_runs_name_the_generator(tmp_path, photo, capsys):
    # A run dir's config.json names its frozen generator, so --generator can be left out.
    run = tmp_path / "run"
    save_generator(load_generator("mini-photo-2"), run / "generator.pt")
    (run / "config.json").write_text(json.dumps({"generator": "mini-photo-2"}))
    assert main(["invert", "--image", str(photo), "--steps", "2", "--loss", "pixel", "--adapted", str(run),
                 "--out", str(tmp_path / "inv"), "--device", "cpu"]) == 0
    assert json.loads((tmp_path / "inv" / "metrics.json").read_text())["generator"] == "mini-photo-2"


def test_e4e_encoder_path_with_and_without_refinement(tmp_path, capsys):
    from test_e4e import e4e_checkpoint, tiny_encoder

    from conftest import make_tiny_generator

    G = make_tiny_generator(32)  # 8 ws of 32 dims, as the tiny encoder makes
    gen, enc = save_generator(G, tmp_path / "g.pt"), tmp_path / "e4e.pt"
    torch.save(e4e_checkpoint(tiny_encoder()), enc)
    image = save_image(torch.rand(3, 32, 32) * 2 - 1, tmp_path / "x.png")
    common = ["invert", "--image", str(image), "--generator", str(gen), "--encoder", str(enc), "--device", "cpu"]
    assert main([*common, "--out", str(tmp_path / "enc")]) == 0
    metrics = json.loads((tmp_path / "enc" / "metrics.json").read_text())
    assert metrics["loss"] == "e4e encoder" and metrics["steps"] == 0 and metrics["encoder"] == str(enc)
    assert main([*common, "--steps", "3", "--loss", "pixel", "--out", str(tmp_path / "refined")]) == 0
    refined = json.loads((tmp_path / "refined" / "metrics.json").read_text())
    assert refined["loss"] == "e4e encoder, then 3 steps of pixel MSE"


def test_bad_images_give_one_line_and_write_nothing(tmp_path, capsys, monkeypatch):
    full = save_image(torch.rand(3, 64, 64) * 2 - 1, tmp_path / "full.png")
    cases = {"text.png": (b"plain text, not an image", "not an image"),
             "corrupt.png": (full.read_bytes()[:300], "damaged"),
             "small.png": (Image.new("RGB", (15, 40)), "at least 16 px"),
             "huge.png": (Image.new("L", (10_000, 6_000)), "60 megapixels"),
             "missing.png": (None, "image not found")}
    for name, (content, needle) in cases.items():
        path = tmp_path / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            content.save(path)
        out = tmp_path / f"out_{name}"
        assert main(["invert", "--image", str(path), "--out", str(out), *MINI]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and needle in err[0], (name, err)
        assert not out.exists()


@pytest.mark.parametrize("args,needle", [(["--steps", "0"], "--steps must be >= 1 (or >= 0 with --encoder)"),
                                         (["--loss", "lpips"], "fetch vgg16 lpips-vgg"),
                                         (["--encoder", "e4e-ffhq"], "fetch e4e-ffhq"),
                                         (["--latent", "z"], "invalid choice")])
def test_bad_options_give_one_line_and_write_nothing(tmp_path, photo, capsys, args, needle):
    assert main(["invert", "--image", str(photo), "--out", str(tmp_path / "out"), *MINI, *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0]
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def inverted(tmp_path_factory, photo):
    out = tmp_path_factory.mktemp("inv")
    assert main(["invert", "--image", str(photo), "--steps", "30", "--loss", "pixel", "--out", str(out), *MINI]) == 0
    return out


def test_edit_moves_the_latent_towards_the_text(tmp_path, inverted, capsys):
    G = load_generator("mini-photo-2")
    before = {k: v.clone() for k, v in G.state_dict().items()}
    same = save_generator(G, tmp_path / "same.pt")
    code = main(["edit", "--latents", str(inverted / "latents.pt"), "--text", domain_prompt("night"), "--steps", "15",
                 "--clip", "mini-clip-2", "--adapted", str(same), "--out", str(tmp_path / "ed"), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "ed" / "metrics.json").read_text())
    assert metrics["clip_similarity_after"] > metrics["clip_similarity_before"] + 0.05
    assert metrics["l2"] > 0 and metrics["identity"] is False and "identity loss skipped" in out
    assert {p.name for p in (tmp_path / "ed").iterdir()} == {"before.png", "edited.png", "adapted_0.png",
                                                           "before_after.png", "latents.pt", "metrics.json"}
    assert (tmp_path / "ed" / "before.png").read_bytes() == (inverted / "reconstruction.png").read_bytes()
    assert all(torch.equal(v, before[k]) for k, v in load_generator("mini-photo-2").state_dict().items())
    # The edited latents.pt is itself a valid input: edits chain.
    assert main(["edit", "--latents", str(tmp_path / "ed" / "latents.pt"), "--text", domain_prompt("sketch"), "--steps", "2",
                 "--clip", "mini-clip-2", "--out", str(tmp_path / "ed2"), "--device", "cpu"]) == 0


@pytest.mark.parametrize("args,needle", [(["--text", " "], "edit text is empty"),
                                         (["--text", "word " * 80], "prompt too long for CLIP"),
                                         (["--text", "x", "--generator", "random:tiny"], "pass the generator it was inverted with"),
                                         (["--text", "x", "--steps", "0"], "steps >= 1")])
def test_edit_bad_input(tmp_path, inverted, capsys, args, needle):
    assert main(["edit", "--latents", str(inverted / "latents.pt"), "--clip", "mini-clip-2", "--out",
                 str(tmp_path / "ed"), "--device", "cpu", *args]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
    assert not (tmp_path / "ed").exists()


def test_edit_refuses_a_file_that_is_not_latents(tmp_path, capsys):
    path = tmp_path / "latents.pt"
    torch.save({"something": 1}, path)
    assert main(["edit", "--latents", str(path), "--text", "x", "--out", str(tmp_path / "ed")]) == 2
    assert "not a latents.pt from `invert`" in capsys.readouterr().err
