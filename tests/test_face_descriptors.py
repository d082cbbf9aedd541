"""Face structure preservation (dlib face descriptors): input checks, the summary, the missing extra,
the pipeline with a stand-in dlib, and, where dlib and scikit-image's astronaut are installed, a real face."""

import importlib.util
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import torch
from dlib_stand_in import FakeRect

from nada_utils.errors import NadaError
from nada_utils.measure import face_descriptors as fd


@pytest.fixture(autouse=True)
def fresh_models():
    """The models are cached per process; each test starts, and leaves, with an empty cache."""
    fd.load_face_models.cache_clear()
    yield
    fd.load_face_models.cache_clear()


def images(n=2, size=32, value=0.0):
    return torch.full((n, 3, size, size), float(value))


@pytest.mark.parametrize("a, b, match", [
    (images(2), images(3), r"same shape, got \(2, 3, 32, 32\) and \(3, 3, 32, 32\)"),
    (images(2), images(2, size=16), "same shape"),
    (images(2)[:, :1], images(2)[:, :1], r"images_a must be an \[N, 3, H, W\] image tensor, got \(2, 1, 32, 32\)"),
    (images(2), images(2)[0], r"images_b must be .* got \(3, 32, 32\)"),
    (np.zeros((2, 3, 32, 32)), images(2), "images_a must be .* got ndarray"),
])
def test_bad_batches_are_refused_before_dlib_is_needed(monkeypatch, a, b, match):
    monkeypatch.setitem(sys.modules, "dlib", None)
    for call in (fd.face_descriptor_distances, fd.face_metrics):
        with pytest.raises(ValueError, match=match):
            call(a, b)


def test_without_dlib_the_error_names_the_pip_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` raises ImportError, installed or not
    for call in (fd.face_descriptor_distances, fd.face_metrics):
        with pytest.raises(NadaError) as err:
            call(images(), images())
        message = str(err.value)
        assert "pip install dlib-bin face-recognition-models" in message and "nada[align]" in message
        assert "\n" not in message


def test_a_missing_recognition_model_is_named(monkeypatch, tmp_path):
    five = tmp_path / "shape_predictor_5_face_landmarks.dat"
    five.write_bytes(b"")
    monkeypatch.setitem(sys.modules, "dlib", types.SimpleNamespace())
    monkeypatch.setattr(fd, "five_point_model_path", lambda: str(five))
    with pytest.raises(NadaError, match=r"dlib_face_recognition_resnet_model_v1\.dat is missing .*pip install"):
        fd.face_descriptor_distances(images(), images())


def test_summary_averages_over_pairs_with_faces():
    got = fd.summarize([0.2, None, 0.8, 0.4])
    assert got["face_distance"] == pytest.approx(1.4 / 3)
    assert got["face_same_person"] == pytest.approx(2 / 3)  # 0.8 is past dlib's 0.6
    assert got["faces_found"] == 0.75
    assert fd.summarize([None, None]) == {"face_distance": None, "face_same_person": None, "faces_found": 0.0}
    assert fd.summarize([]) == {"face_distance": None, "face_same_person": None, "faces_found": None}
    assert fd.summarize([0.6])["face_same_person"] == 0.0  # "closer than", as dlib's convention


def fake_dlib(loads):
    """A stand-in dlib: bright images hold two faces (the larger wins), dark ones none; the descriptor of
    a face is its image's mean grey level in the first of 128 entries, and the rectangle's width in the second."""
    def detector(image, upsample):
        assert image.shape[:2] == (fd.WORK_SIDE, fd.WORK_SIDE) and image.dtype == np.uint8 and upsample == 0
        return [FakeRect(0, 0, 10, 10), FakeRect(5, 5, 105, 105)] if image.mean() > 64 else []

    class Net:
        def compute_face_descriptor(self, image, shape):
            return [image.mean() / 255, shape.width] + [0.0] * 126

    def load(kind, result):
        loads.append(kind)
        return result

    return types.SimpleNamespace(
        get_frontal_face_detector=lambda: load("detector", detector),
        shape_predictor=lambda path: load("predictor", lambda image, rect: types.SimpleNamespace(
            width=(rect.right() - rect.left()) / 100)),
        face_recognition_model_v1=lambda path: load("net", Net()),
    )


def test_pipeline_with_a_stand_in_dlib(monkeypatch, tmp_path):
    for name in ("shape_predictor_5_face_landmarks.dat", fd.RECOGNITION_MODEL):
        (tmp_path / name).write_bytes(b"")
    loads = []
    monkeypatch.setitem(sys.modules, "dlib", fake_dlib(loads))
    monkeypatch.setattr(fd, "five_point_model_path", lambda: str(tmp_path / "shape_predictor_5_face_landmarks.dat"))
    a = torch.cat([images(1, 64, 0.5), images(1, 64, -1.0), images(1, 64, 0.5)])  # face, none, face
    b = torch.cat([images(1, 64, 0.0), images(1, 64, 0.5), images(1, 64, -0.6)])  # face, face, none
    got = fd.face_descriptor_distances(a, b)
    assert got[0] == pytest.approx(191 / 255 - 128 / 255) and got[1:] == [None, None]
    assert fd.face_metrics(a, b) == {"face_distance": got[0], "face_same_person": 1.0, "faces_found": 1 / 3}
    big = fd.face_descriptor_distances(images(1, 1024, 0.5), images(1, 1024, 0.5))  # shrunk to WORK_SIDE
    assert big == [0.0]
    assert sorted(loads) == ["detector", "net", "predictor"]  # loaded once for all calls


def astronaut():
    """scikit-image's astronaut photo (512 px, one frontal face) as an RGB PIL image, found without
    importing scikit-image."""
    from PIL import Image

    spec = importlib.util.find_spec("skimage")
    path = Path(spec.origin).parent / "data" / "astronaut.png" if spec and spec.origin else None
    if path is None or not path.is_file():
        pytest.skip("needs scikit-image's astronaut.png")
    with Image.open(path) as im:
        return im.convert("RGB")


def test_a_real_face_with_dlib():
    pytest.importorskip("dlib")
    if importlib.util.find_spec("face_recognition_models") is None:
        pytest.skip("needs face-recognition-models")
    from PIL import Image

    from nada_utils.images import pil_to_tensor

    im = astronaut()
    a = pil_to_tensor(im, 256)[None]
    # The same face, slightly zoomed and shifted (resampled), then brightened: dlib's same person.
    jitter = (pil_to_tensor(im.crop((12, 8, 500, 496)), 256)[None] * 1.1 + 0.05).clamp(-1, 1)
    turned = pil_to_tensor(im.rotate(5, resample=Image.Resampling.BICUBIC), 256)[None]
    blank = torch.zeros_like(a)
    got = fd.face_descriptor_distances(torch.cat([a, a, a, blank]), torch.cat([a, jitter, turned, a]))
    assert got[0] == pytest.approx(0.0, abs=1e-6)
    assert 0.0 < got[1] < 0.3 and 0.0 < got[2] < 0.3  # measured 0.080 and 0.092
    assert got[3] is None
    metrics = fd.face_metrics(torch.cat([a, a]), torch.cat([jitter, blank]))
    assert metrics["face_same_person"] == 1.0 and metrics["faces_found"] == 0.5
    assert metrics["face_distance"] == pytest.approx(got[1])
