"""FFHQ face alignment: the crop geometry, the 5-point mouth estimate and the warp, all without dlib;
`align_face` itself with dlib missing (a clear error) and with a stand-in dlib (the whole pipeline)."""

import math
import sys
import types

import numpy as np
import pytest
from dlib_stand_in import FakeRect
from PIL import Image

from nada_utils.errors import NadaError
from nada_utils.models import face_align as fa

# dlib's mean face for its 5-point model (interpolation.h), in dlib's point order, and the 68-point
# mean face's mouth corners (points 48 and 54) in the same unit frame.
TEMPLATE_5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                       [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                       [0.4901123135679, 0.6277975316475]])
TEMPLATE_MOUTH = np.array([[0.254149, 0.780233], [0.726104, 0.780233]])


def rotate(points, degrees, about=(0.0, 0.0)):
    t = math.radians(degrees)
    r = np.array([[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]])
    return (np.asarray(points, dtype=float) - about) @ r.T + about


def side_lengths(quad):
    return [math.hypot(*(quad[(i + 1) % 4] - quad[i])) for i in range(4)]


def test_ffhq_quad_for_an_upright_face():
    # Eyes 20 px apart at y=50, mouth 20 px below them: half-side max(2*20, 1.8*20) = 40,
    # centre a tenth of the way from the eyes to the mouth.
    quad = fa.ffhq_quad((40, 50), (60, 50), (42, 70), (58, 70))
    assert np.allclose(quad, [[10, 12], [10, 92], [90, 92], [90, 12]])


def test_ffhq_quad_is_a_square_whose_size_follows_the_longer_rule():
    # A long face: 1.8 * eye-to-mouth (1.8 * 40) beats 2 * eye distance (2 * 20).
    quad = fa.ffhq_quad((40, 50), (60, 50), (45, 90), (55, 90))
    assert np.allclose(side_lengths(quad), 2 * 1.8 * 40)
    assert np.isclose(np.dot(quad[1] - quad[0], quad[3] - quad[0]), 0)  # right angle
    assert np.allclose(quad.mean(0), (50, 50 + 0.1 * 40))


@pytest.mark.parametrize("degrees", [30, -75])
def test_ffhq_quad_turns_and_scales_with_the_face(degrees):
    eyes_mouth = np.array([[40, 50], [60, 50], [42, 70], [58, 70]], dtype=float)
    base = fa.ffhq_quad(*eyes_mouth)
    about = np.array([13.0, -7.0])
    assert np.allclose(fa.ffhq_quad(*rotate(eyes_mouth, degrees, about)), rotate(base, degrees, about))
    moved = eyes_mouth * 2.5 + (100, 30)
    assert np.allclose(fa.ffhq_quad(*moved), base * 2.5 + (100, 30))
    # The angle of the quad's top edge is the angle the face was turned by.
    top = rotate(base, degrees)[3] - rotate(base, degrees)[0]
    assert np.isclose(math.degrees(math.atan2(top[1], top[0])), degrees)


def test_the_mouth_estimate_matches_dlibs_mean_face():
    points = TEMPLATE_5 * 300 + (50, 80)
    left, right = fa.mouth_from_five_points(points)
    want = TEMPLATE_MOUTH * 300 + (50, 80)
    assert np.allclose((left + right) / 2, want.mean(0), atol=0.5)  # within half a pixel on a 300 px face
    assert np.allclose(right - left, want[1] - want[0], atol=1.0)
    # The 5-point quad is the FFHQ quad of the same face with the mean face's true mouth corners.
    eyes = points[[2, 3]].mean(0), points[[0, 1]].mean(0)
    assert np.allclose(fa.quad_from_five_points(points), fa.ffhq_quad(*eyes, *want), atol=1.0)


def test_the_five_point_quad_is_upright_for_an_upright_face_and_turns_with_it():
    points = TEMPLATE_5 * 200 + (10, 20)
    quad = fa.quad_from_five_points(points)
    assert abs(quad[0, 1] - quad[3, 1]) < 0.5 and quad[1, 1] > quad[0, 1]  # level top edge, below is down
    assert quad[3, 0] > quad[0, 0]  # not mirrored: dlib's eye order is read the right way round
    eyes = points[:4].mean(0)
    assert quad[0, 1] < eyes[1] < quad[1, 1] and quad[0, 0] < eyes[0] < quad[3, 0]
    turned = fa.quad_from_five_points(rotate(points, 30, about=(110, 120)))
    assert np.allclose(turned, rotate(quad, 30, about=(110, 120)))
    with pytest.raises(ValueError, match="5 landmarks"):
        fa.quad_from_five_points(points[:4])


def marked_image(w=200, h=150, at=(120, 60)):
    a = np.zeros((h, w, 3), np.uint8)
    a[at[1] - 1:at[1] + 2, at[0] - 1:at[0] + 2] = 255
    return Image.fromarray(a)


def bright_centre(img):
    a = np.asarray(img.convert("L"), dtype=float)
    ys, xs = np.indices(a.shape)
    return np.array([(xs * a).sum() / a.sum(), (ys * a).sum() / a.sum()])


def test_warp_quad_puts_a_marked_point_where_the_quad_says():
    img = marked_image(at=(120, 60))
    square = np.array([[100, 40], [100, 100], [160, 100], [160, 40]], dtype=float)
    out = fa.warp_quad(img, square - 0.5, 60)  # 60 px a side, 1:1, pixel edges on the quad
    assert out.size == (60, 60) and out.mode == "RGB"
    assert np.allclose(bright_centre(out), (20, 20), atol=0.3)
    half = fa.warp_quad(img, square - 0.5, 30)  # half scale: pixel 20 -> (20 + 0.5) / 2 - 0.5
    assert np.allclose(bright_centre(half), (9.75, 9.75), atol=0.5)
    # A quad turned by 90 degrees: its top edge runs down the image, so the image's y becomes the
    # output's x, and the output's y runs right-to-left across the image (from x=160 to x=100).
    turned = np.array([[160, 40], [100, 40], [100, 100], [160, 100]], dtype=float)
    assert np.allclose(bright_centre(fa.warp_quad(img, turned - 0.5, 60)), (20, 160 - 120 - 1), atol=0.3)


def test_warp_quad_mirrors_beyond_the_edge_and_shrinks_large_sources():
    ramp = np.tile(np.linspace(30, 220, 64, dtype=np.uint8)[None, :, None], (64, 1, 3))
    img = Image.fromarray(ramp)
    outside = np.array([[-40, -40], [-40, 40], [40, 40], [40, -40]], dtype=float)  # three quarters outside
    out = np.asarray(fa.warp_quad(img, outside, 32))
    assert out.shape == (32, 32, 3) and out.min() > 0  # mirrored and faded, never black
    black = np.asarray(fa.warp_quad(img, outside, 32, pad=False))
    assert black[:8, :8].max() == 0
    # A big source for a small output: shrunk first, the marked point still lands where it should.
    big = marked_image(800, 600, at=(480, 240))
    square = np.array([[400, 160], [400, 400], [640, 400], [640, 160]], dtype=float)
    centre = bright_centre(fa.warp_quad(big, square - 0.5, 24))
    assert np.allclose(centre, ((80 + 0.5) / 10 - 0.5,) * 2, atol=0.5)


def test_without_dlib_align_face_names_the_pip_command(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "dlib", None)  # `import dlib` raises ImportError, installed or not
    path = tmp_path / "face.png"
    Image.new("RGB", (64, 64)).save(path)
    for call in (lambda: fa.align_face(path), lambda: fa.five_points(Image.open(path))):
        with pytest.raises(NadaError) as err:
            call()
        message = str(err.value)
        assert "pip install dlib-bin face-recognition-models" in message and "nada[align]" in message
        assert "\n" not in message


def fake_dlib(faces, points):
    """A stand-in for dlib: a detector that returns `faces` and a predictor that returns `points`."""
    seen = {}

    def predictor(image, rect):
        seen["rect"], seen["shape"] = rect.box, image.shape
        parts = [types.SimpleNamespace(x=int(x), y=int(y)) for x, y in points]
        return types.SimpleNamespace(part=lambda i: parts[i], num_parts=5)

    module = types.SimpleNamespace(
        get_frontal_face_detector=lambda: (lambda image, upsample: list(faces)),
        shape_predictor=lambda path: predictor,
        rectangle=FakeRect,
    )
    return module, seen


def test_align_face_pipeline_with_a_stand_in_dlib(monkeypatch, tmp_path):
    points = np.rint(TEMPLATE_5 * 40 + (30, 20))
    faces = [FakeRect(0, 0, 10, 10), FakeRect(20, 10, 80, 70)]  # the larger face is the one used
    module, seen = fake_dlib(faces, points)
    monkeypatch.setitem(sys.modules, "dlib", module)
    monkeypatch.setattr(fa, "five_point_model_path", lambda: "model.dat")
    img = marked_image(100, 90, at=tuple(int(v) for v in points[4]))  # the mark on the nose base
    out = fa.align_face(img, size=48)
    assert out.size == (48, 48) and seen["rect"] == (20, 10, 80, 70) and seen["shape"] == (90, 100, 3)
    quad = fa.quad_from_five_points(points)
    # Where the nose base should land: its place inside the quad, in output pixel indices.
    u, v = np.linalg.solve(np.stack([quad[3] - quad[0], quad[1] - quad[0]], 1), points[4] - quad[0])
    want = np.array([u, v]) * 48 - 0.5
    assert np.allclose(bright_centre(out), want, atol=0.6)

    module, _ = fake_dlib([], points)
    monkeypatch.setitem(sys.modules, "dlib", module)
    path = tmp_path / "nobody.png"
    img.save(path)
    with pytest.raises(NadaError, match=r"no face found in .*nobody\.png; pass an already aligned"):
        fa.align_face(path)
    with pytest.raises(NadaError, match="image not found"):
        fa.align_face(tmp_path / "missing.png")
