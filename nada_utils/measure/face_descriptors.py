"""Structure preservation for faces: dlib face-descriptor distances (optional extra: `pip install 'nada[align]'`).

For the same latent, the frozen and the adapted generator should draw the same person. dlib's face
recognition ResNet (`dlib_face_recognition_resnet_model_v1.dat`, in `face-recognition-models` beside the
5-point model) maps a face, aligned from its 5 landmarks, to a 128-D descriptor; by dlib's convention
descriptors less than 0.6 apart are the same person. Each image is first resized (Lanczos) to a longer
side of `WORK_SIDE` px: small outputs grow until dlib's frontal detector (blind under about 80 px) finds
the face, large ones shrink so detection stays fast. The largest face found is measured.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import torch

from nada_utils.errors import NadaError
from nada_utils.images import to_uint8
from nada_utils.models.face_align import INSTALL_HINT, five_point_model_path, import_dlib

RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
SAME_PERSON = 0.6  # dlib's threshold: descriptors closer than this are the same person
WORK_SIDE = 512


@functools.lru_cache(maxsize=1)
def load_face_models():
    """(dlib, detector, 5-point predictor, recognition net), loaded on first use; errors are not cached."""
    dlib = import_dlib()
    five = five_point_model_path()
    net = Path(five).with_name(RECOGNITION_MODEL)
    if not net.is_file():
        raise NadaError(f"{RECOGNITION_MODEL} is missing beside {Path(five).name}; {INSTALL_HINT}")
    return (dlib, dlib.get_frontal_face_detector(), dlib.shape_predictor(five),
            dlib.face_recognition_model_v1(str(net)))


def _descriptor(image: np.ndarray, models) -> np.ndarray | None:
    """The 128-D descriptor of the largest face in an `[H, W, 3]` uint8 image, or None without a face."""
    from PIL import Image

    _, detect, predict, net = models
    h, w = image.shape[:2]
    k = WORK_SIDE / max(h, w)
    if k != 1:
        size = (max(1, round(w * k)), max(1, round(h * k)))
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))
    image = np.ascontiguousarray(image)
    faces = list(detect(image, 0))
    if not faces:
        return None
    best = max(faces, key=lambda r: (r.right() - r.left()) * (r.bottom() - r.top()))
    return np.asarray(net.compute_face_descriptor(image, predict(image, best)), dtype=np.float64)


def _check(images_a, images_b) -> None:
    for name, x in (("images_a", images_a), ("images_b", images_b)):
        if not isinstance(x, torch.Tensor) or x.ndim != 4 or x.shape[1] != 3:
            got = tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__
            raise ValueError(f"{name} must be an [N, 3, H, W] image tensor, got {got}")
    if images_a.shape != images_b.shape:
        raise ValueError(f"image batches to compare must have the same shape, got "
                         f"{tuple(images_a.shape)} and {tuple(images_b.shape)}")


def face_descriptor_distances(images_a: torch.Tensor, images_b: torch.Tensor) -> list[float | None]:
    """For each pair of `[N, 3, H, W]` images in [-1, 1]: the Euclidean distance between the dlib face
    descriptors of `images_a[i]` and `images_b[i]`, or None where either image shows no face."""
    _check(images_a, images_b)
    models = load_face_models()  # the missing extra is reported before any work
    out: list[float | None] = []
    for a, b in zip(to_uint8(images_a).numpy(), to_uint8(images_b).numpy()):
        da = _descriptor(a, models)
        db = None if da is None else _descriptor(b, models)
        out.append(None if db is None else float(np.linalg.norm(da - db)))
    return out


def summarize(distances: list[float | None]) -> dict:
    """`face_distance`: mean distance over pairs with faces; `face_same_person`: share of those pairs
    closer than `SAME_PERSON`; `faces_found`: share of all pairs where both images had a face.
    Each is None when there is nothing to average over."""
    found = [d for d in distances if d is not None]
    return {
        "face_distance": math.fsum(found) / len(found) if found else None,
        "face_same_person": sum(d < SAME_PERSON for d in found) / len(found) if found else None,
        "faces_found": len(found) / len(distances) if distances else None,
    }


def face_metrics(images_frozen: torch.Tensor, images_adapted: torch.Tensor) -> dict:
    """Face structure preservation between the frozen and the adapted generator's outputs for the same
    latents (see `summarize` for the keys)."""
    return summarize(face_descriptor_distances(images_frozen, images_adapted))
