"""FFHQ-style face alignment from dlib's 5-point landmarks (optional extra: `pip install 'nada[align]'`).

StyleGAN's FFHQ faces were cropped by NVlabs' ffhq-dataset script from 68 dlib landmarks: it takes the
two eye centres and the two mouth corners and builds an oriented square around them (`ffhq_quad`).
Our users get only dlib's small 5-point model (`shape_predictor_5_face_landmarks.dat`, shipped in the
`face-recognition-models` package), which marks the two corners of each eye and the base of the nose.
The eyes are then the midpoints of their corners, and the mouth, which the model does not see, is
estimated from dlib's own mean face (the template `get_face_chip_details` aligns 5- and 68-point
detections to): there the eye midpoint, the nose base (point 33) and the centre of the mouth corners
(points 48 and 54) lie on one vertical line, and the mouth lies 0.375 of the eye-to-nose distance
beyond the nose. So `mouth = nose + 0.375 * (nose - eye_midpoint)`, and the corners sit either side of
it, parallel to the eye line, 0.898 eye distances apart (the FFHQ rule uses only their midpoint).

`ffhq_quad` and `warp_quad` need only numpy and PIL; `align_face` and `five_points` import dlib
lazily and raise a one-line `NadaError` when it is missing or finds no face.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

from nada_utils.errors import NadaError

INSTALL_HINT = ("face alignment and face metrics need dlib, an optional extra: pip install dlib-bin "
                "face-recognition-models (or pip install 'nada[align]')")

# dlib's 5-point order (render_face_detections_abstract.h): 0/1 outer/inner corner of the subject's left
# eye (on the image's right), 2/3 outer/inner corner of the subject's right eye (on the image's left),
# 4 the base of the nose, at the top of the philtrum.
IMAGE_RIGHT_EYE = (0, 1)
IMAGE_LEFT_EYE = (2, 3)
NOSE = 4

# From dlib's mean face (interpolation.h): 5-point template eye-corner midpoint y 0.22131, nose base y
# 0.62780, 68-point mouth corners 48/54 at y 0.780233 and x 0.254149 / 0.726104, eye distance 0.52548.
MOUTH_BEYOND_NOSE = 0.375  # (0.780233 - 0.62780) / (0.62780 - 0.22131)
MOUTH_WIDTH = 0.898  # (0.726104 - 0.254149) / 0.52548, in eye distances

FIVE_POINT_MODEL = "shape_predictor_5_face_landmarks.dat"
DETECT_SIDE = 1024  # faces are detected on a copy at most this large (then refined at full size)


def ffhq_quad(eye_left, eye_right, mouth_left, mouth_right) -> np.ndarray:
    """The FFHQ crop square for two eye centres and two mouth corners (x, y), as `[4, 2]` corners.

    Corner order is top-left, bottom-left, bottom-right, top-right of the aligned face, the order PIL's
    QUAD transform takes. "left" means the left of the image. The square is centred a tenth of the way
    from the eye midpoint to the mouth midpoint, is turned so that the eye line (averaged with the
    normal of the eye-to-mouth line) is level, and has half-side max(2 * eye distance, 1.8 * eye-to-mouth
    distance).
    """
    eye_left, eye_right, mouth_left, mouth_right = (np.asarray(p, dtype=np.float64) for p in
                                                    (eye_left, eye_right, mouth_left, mouth_right))
    eye_mid = (eye_left + eye_right) / 2
    eye_to_eye = eye_right - eye_left
    eye_to_mouth = (mouth_left + mouth_right) / 2 - eye_mid
    # The aligned x axis: the eye direction plus the eye-to-mouth direction turned a quarter to the left.
    x = eye_to_eye + np.array([eye_to_mouth[1], -eye_to_mouth[0]])
    norm = math.hypot(*x)
    if not norm > 0:
        raise ValueError("degenerate landmarks: eyes and mouth give no orientation")
    x *= max(2.0 * math.hypot(*eye_to_eye), 1.8 * math.hypot(*eye_to_mouth)) / norm
    y = np.array([-x[1], x[0]])  # x turned a quarter to the right: down the face in image coordinates
    c = eye_mid + 0.1 * eye_to_mouth
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y])


def mouth_from_five_points(points) -> tuple[np.ndarray, np.ndarray]:
    """Estimated (left, right) mouth corners for dlib's 5 points (see the module docstring)."""
    p = _five(points)
    eye_left, eye_right = p[list(IMAGE_LEFT_EYE)].mean(0), p[list(IMAGE_RIGHT_EYE)].mean(0)
    nose = p[NOSE]
    mouth = nose + MOUTH_BEYOND_NOSE * (nose - (eye_left + eye_right) / 2)
    half = 0.5 * MOUTH_WIDTH * (eye_right - eye_left)
    return mouth - half, mouth + half


def quad_from_five_points(points) -> np.ndarray:
    """The FFHQ crop square (`[4, 2]`, see `ffhq_quad`) from dlib's 5 landmarks, in dlib's order."""
    p = _five(points)
    mouth_left, mouth_right = mouth_from_five_points(p)
    return ffhq_quad(p[list(IMAGE_LEFT_EYE)].mean(0), p[list(IMAGE_RIGHT_EYE)].mean(0), mouth_left, mouth_right)


def _five(points) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    if p.shape != (5, 2):
        raise ValueError(f"expected 5 landmarks as a [5, 2] array, got shape {p.shape}")
    return p


def warp_quad(image, quad, size: int = 1024, *, pad: bool = True):
    """Cut the square `quad` (`[4, 2]` pixel coordinates, order as `ffhq_quad`) out of `image` as a
    `size` x `size` RGB PIL image.

    Coordinates are pixel indices (pixel i's centre is at i), as landmark detectors report them. A large
    source is first shrunk by an integer factor and the warp is supersampled, so the result is not
    aliased. Where the quad reaches outside the image the image is mirrored there and that band is
    blurred and faded to the image's median colour (as FFHQ did), unless `pad` is False (then black).
    """
    from PIL import Image

    image = image.convert("RGB")
    # Continuous coordinates (PIL's: pixel i spans [i, i + 1)) from here on.
    q = np.asarray(quad, dtype=np.float64).reshape(4, 2) + 0.5
    side = (math.hypot(*(q[3] - q[0])) + math.hypot(*(q[1] - q[0]))) / 2

    shrink = int(math.floor(side / size * 0.5))
    if shrink > 1:
        w, h = image.size
        new = (max(1, round(w / shrink)), max(1, round(h / shrink)))
        image = image.resize(new, Image.Resampling.BOX)
        q *= (new[0] / w, new[1] / h)
        side /= shrink

    # Crop to the quad plus a border, so a small face in a large photo is cheap to pad and warp.
    border = max(int(round(side * 0.1)), 3)
    lo, hi = np.floor(q.min(0)).astype(int) - border, np.ceil(q.max(0)).astype(int) + border
    box = (max(lo[0], 0), max(lo[1], 0), min(hi[0], image.width), min(hi[1], image.height))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise ValueError("the quad lies entirely outside the image")
    if box != (0, 0, image.width, image.height):
        image = image.crop(box)
        q -= box[:2]

    widths = (box[0] - lo[0], box[1] - lo[1], hi[0] - box[2], hi[1] - box[3])  # left, top, right, bottom
    if pad and max(widths) > 0:
        image = _mirror_pad(image, widths, blur=max(side * 0.02, 1.0))
        q += widths[:2]

    scale = int(min(max(math.ceil(side / size), 1), 4))
    out = image.transform((size * scale, size * scale), Image.Transform.QUAD, tuple(q.flatten()),
                          Image.Resampling.BILINEAR)
    if scale > 1:
        out = out.resize((size, size), Image.Resampling.LANCZOS)
    return out


def _mirror_pad(image, widths, *, blur: float):
    """Mirror-pad by (left, top, right, bottom) and fade the new band: blurred, then toward the median."""
    from PIL import Image, ImageFilter

    left, top, right, bottom = (max(int(v), 0) for v in widths)
    a = np.asarray(image, dtype=np.float32)
    h, w = a.shape[:2]
    mode = "reflect" if min(h, w) > 1 else "edge"
    a = np.pad(a, ((top, bottom), (left, right), (0, 0)), mode=mode)
    # How far into the band each pixel is: 0 on the original image, 1 at the outer edge.
    ys, xs = np.arange(a.shape[0], dtype=np.float32), np.arange(a.shape[1], dtype=np.float32)
    fx = np.maximum((left - xs) / max(left, 1), (xs - (left + w - 1)) / max(right, 1))
    fy = np.maximum((top - ys) / max(top, 1), (ys - (top + h - 1)) / max(bottom, 1))
    band = np.clip(np.maximum(fx[None, :], fy[:, None]), 0.0, 1.0)[..., None]
    blurred = np.asarray(Image.fromarray(np.uint8(np.clip(np.rint(a), 0, 255))).filter(
        ImageFilter.GaussianBlur(blur)), dtype=np.float32)
    a += (blurred - a) * np.clip(band * 3.0, 0.0, 1.0)
    a += (np.median(a[top:top + h, left:left + w], axis=(0, 1)) - a) * band
    return Image.fromarray(np.uint8(np.clip(np.rint(a), 0, 255)), "RGB")


def import_dlib():
    try:
        import dlib
    except ImportError:
        raise NadaError(INSTALL_HINT) from None
    return dlib


def five_point_model_path() -> str:
    """The 5-point model file inside face-recognition-models, found without importing that package
    (its import needs setuptools' deprecated pkg_resources)."""
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise NadaError(INSTALL_HINT)
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "models" / FIVE_POINT_MODEL
        if path.is_file():
            return str(path)
    raise NadaError(f"{FIVE_POINT_MODEL} is missing from face-recognition-models; reinstall it: "
                    "pip install --force-reinstall face-recognition-models")


def _open_rgb(image):
    """A PIL image, or a path to one (checked by `images.open_image`), as an upright RGB PIL image."""
    from PIL import ImageOps

    from nada_utils.images import open_image

    if hasattr(image, "size") and hasattr(image, "convert"):
        return ImageOps.exif_transpose(image).convert("RGB")
    return open_image(image)


def five_points(image, *, name: str | None = None) -> np.ndarray:
    """dlib's 5 landmarks (`[5, 2]`, dlib's order) of the largest face that dlib's frontal detector
    finds in `image` (a PIL image or a path). Raises NadaError if dlib is missing or sees no face."""
    dlib = import_dlib()
    model = five_point_model_path()
    label = name or (str(image) if not hasattr(image, "size") else "the image")
    img = _open_rgb(image)
    full = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))

    # Detect on a copy no larger than DETECT_SIDE (fast on big photos), upsampled once to catch small faces.
    k = min(1.0, DETECT_SIDE / max(img.size))
    small = full if k == 1.0 else np.ascontiguousarray(np.asarray(
        img.resize((max(1, round(img.width * k)), max(1, round(img.height * k)))), dtype=np.uint8))
    faces = list(dlib.get_frontal_face_detector()(small, 1))
    if not faces:
        raise NadaError(f"no face found in {label}; pass an already aligned, centred face without alignment")
    best = max(faces, key=lambda r: (r.right() - r.left()) * (r.bottom() - r.top()))
    rect = best if k == 1.0 else dlib.rectangle(int(round(best.left() / k)), int(round(best.top() / k)),
                                                int(round(best.right() / k)), int(round(best.bottom() / k)))
    shape = dlib.shape_predictor(model)(full, rect)
    return np.array([[shape.part(i).x, shape.part(i).y] for i in range(5)], dtype=np.float64)


def align_face(image, size: int = 1024):
    """FFHQ-aligned `size` x `size` RGB PIL crop of the largest face in `image` (a PIL image or a path).

    Needs the optional extra (`pip install dlib-bin face-recognition-models`); raises NadaError when it
    is missing or when no face is found.
    """
    if int(size) < 1:
        raise NadaError(f"alignment size must be a positive number of pixels, got {size}")
    name = None if hasattr(image, "size") else str(image)
    import_dlib()  # the missing extra is reported before anything is read
    img = _open_rgb(image)
    points = five_points(img, name=name or "the image")
    return warp_quad(img, quad_from_five_points(points), int(size))
