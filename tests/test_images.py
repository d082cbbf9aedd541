"""Images in: any PIL format and mode to `[3, size, size]` in [-1, 1]; bad files are clear one-line errors."""

import pytest
import torch
from PIL import Image

from nada_utils.errors import NadaError
from nada_utils.images import load_image


def save(tmp_path, name, image, **kw):
    path = tmp_path / name
    image.save(path, **kw)
    return path


@pytest.mark.parametrize("mode", ["RGB", "L", "P", "CMYK", "I;16"])
def test_modes_become_rgb(tmp_path, mode):
    img = Image.new("RGB", (40, 30), (200, 100, 50)).convert(mode)
    x = load_image(save(tmp_path, "a.png" if mode != "CMYK" else "a.jpg", img), 24)
    assert x.shape == (3, 24, 24) and x.dtype == torch.float32 and -1 <= x.min() and x.max() <= 1


def test_transparency_lies_on_white_and_the_crop_is_central(tmp_path):
    img = Image.new("RGBA", (60, 20), (0, 0, 0, 0))  # fully transparent, wide
    img.paste((255, 0, 0, 255), (20, 0, 40, 20))  # an opaque red square in the middle third
    x = load_image(save(tmp_path, "t.png", img), 20)
    assert torch.allclose(x[:, 10, 10], torch.tensor([1.0, -1.0, -1.0]))  # the centre crop is the red square
    corner = load_image(save(tmp_path, "u.png", Image.new("LA", (20, 20), (0, 0))), 16)
    assert torch.all(corner == 1.0)  # transparent black is white, not black


def test_bad_files_are_clear_errors(tmp_path):
    text = tmp_path / "notes.png"
    text.write_text("not an image at all")
    full = save(tmp_path, "full.png", Image.effect_noise((64, 64), 50).convert("RGB"))
    cut = tmp_path / "cut.png"
    cut.write_bytes(full.read_bytes()[: len(full.read_bytes()) // 2])
    tiny = save(tmp_path, "tiny.png", Image.new("RGB", (15, 200)))
    cases = [(text, "not an image PIL can read"), (cut, "damaged"), (tiny, "15x200 px; images need at least 16 px"),
             (tmp_path / "missing.jpg", "image not found"), (tmp_path, "is a folder")]
    for path, needle in cases:
        with pytest.raises(NadaError, match=needle) as info:
            load_image(path, 32)
        assert "\n" not in str(info.value)


def test_over_50_megapixels_is_refused(tmp_path, monkeypatch):
    big = save(tmp_path, "big.png", Image.new("L", (10_000, 6_000)))
    with pytest.raises(NadaError, match=r"10000x6000 px \(60 megapixels\); the limit is 50"):
        load_image(big, 32)
    assert load_image(save(tmp_path, "ok.png", Image.new("L", (16, 16))), 16).shape == (3, 16, 16)
    # PIL's own decompression-bomb guard fires inside open(); it must read as "too large" too.
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)
    with pytest.raises(NadaError, match="over 50 megapixels"):
        load_image(save(tmp_path, "bomb.png", Image.new("L", (40, 40))), 16)
