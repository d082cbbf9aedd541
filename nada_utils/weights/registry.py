"""The weight registry: which pretrained files exist, where they come from and where they live.

Pure data and path logic. Nothing here touches the network; `nada_utils.weights.download` does the fetching.
A registry name can be used wherever a weight file is asked for; a plain file path works there too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

from nada_utils.errors import NadaError

# The loaders that exist; WeightSpec.kind names one of them.
KINDS = (
    "generator-rosinality",
    "generator-nvlabs-pkl",
    "generator-tf-pkl",
    "identity-irse50",
    "encoder-e4e",
    "vgg16-imagenet",
    "lpips-heads",
    "clip",
    "mini-judge",
)


@dataclass(frozen=True)
class WeightSpec:
    """One downloadable weight file and everything known about its origin."""

    name: str  # registry key users type, e.g. "ffhq-1024"
    filename: str  # the file name in the cache directory (and on the mirror)
    kind: str  # which loader reads it; one of KINDS
    gdrive_id: str | None  # Google Drive file id, fetched with gdown; None when no confirmed id
    url: str | None  # direct HTTP(S) URL, tried before Google Drive
    size: int | None  # exact size in bytes; None when not recorded (then only Content-Length is checked)
    sha256: str | None  # hex digest; None when not recorded, never guessed
    description: str  # one line for listings
    notes: str = ""  # loader hints or caveats, e.g. "car-512: crop rows 64:448"
    bundled: str | None = None  # path inside the nada_utils package for files shipped with it (mini world)
    class_names: tuple[str, ...] = ()  # class-conditional generators: label i's name, for `{class}` prompts
    restore: str = ""  # for a file with no download source (no longer shipped): how to get it back

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"WeightSpec {self.name!r}: kind {self.kind!r} is not one of {KINDS}")


# CIFAR-10's labels in order (its dataset's batches.meta), which the conditional generator was trained on.
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")

_ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
_TF_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2/networks/"
# The URL form NVlabs' stylegan3 README gives ("Access individual networks via .../files/<MODEL>").
_SG3_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"


def _pickle(name: str, filename: str, kind: str, url: str, description: str, notes: str) -> WeightSpec:
    """An NVlabs pickle on a public server, whose size and checksum are not recorded."""
    return WeightSpec(name=name, filename=filename, kind=kind, gdrive_id=None, url=url, size=None, sha256=None,
                      description=description, notes=notes)


def _ada(name: str, filename: str, description: str, notes: str = "") -> WeightSpec:
    # StyleGAN2-ADA pickles embed their own source; the loader must unpickle them restrictedly.
    return _pickle(name, filename, "generator-nvlabs-pkl", _ADA_BASE + filename, description,
                   notes or "NVlabs StyleGAN2-ADA PyTorch pickle; size and checksum not recorded.")


def _tf(name: str, filename: str, description: str, notes: str) -> WeightSpec:
    return _pickle(name, filename, "generator-tf-pkl", _TF_BASE + filename, description, notes)


def _sg3(cfg: str, dataset: str, resolution: int, description: str) -> WeightSpec:
    # Same snapshot container as StyleGAN2-ADA (G_ema of persistent classes); models.stylegan3_io loads it.
    filename = f"stylegan3-{cfg}-{dataset}-{resolution}x{resolution}.pkl"
    return _pickle(f"stylegan3-{cfg}-{dataset}", filename, "generator-nvlabs-pkl", _SG3_BASE + filename,
                   f"StyleGAN3-{cfg.upper()} {description} {resolution}x{resolution}",
                   "NVlabs StyleGAN3 pickle (NGC); size and checksum not published, so not recorded.")


_ENTRIES = [
    WeightSpec(
        name="ffhq-1024",
        filename="stylegan2-ffhq-config-f.pt",
        kind="generator-rosinality",
        # Drive id from the pSp and e4e READMEs (same file the reference Colab fetches).
        gdrive_id="1EM87UquaoQmk17Q8d5kYIAHqu0dkYqdT",
        url="https://huggingface.co/akhaliq/OneshotCLIP-stylegan2-ffhq/resolve/main/stylegan2-ffhq-config-f.pt",
        size=381_462_551,
        sha256="bae494ef77e32a9cd1792a81a3c167692a0e64f6bcd8b06592ff42917e2ed46e",
        description="StyleGAN2 FFHQ 1024x1024 config-f, rosinality format",
        notes="Hugging Face mirror first, Google Drive as fallback.",
    ),
    _ada("afhq-cat", "afhqcat.pkl", "StyleGAN2-ADA AFHQ cat 512x512"),
    _ada("afhq-dog", "afhqdog.pkl", "StyleGAN2-ADA AFHQ dog 512x512"),
    _ada("afhq-wild", "afhqwild.pkl", "StyleGAN2-ADA AFHQ wild 512x512"),
    _ada("metfaces", "metfaces.pkl", "StyleGAN2-ADA MetFaces 1024x1024"),
    replace(_ada(
        "cifar10",
        "cifar10.pkl",
        "StyleGAN2-ADA CIFAR-10 32x32, class-conditional",
        "NVlabs StyleGAN2-ADA PyTorch pickle; class-conditional (pass a class label); size and checksum not recorded.",
    ), class_names=CIFAR10_CLASSES),
    _tf(
        "church-256",
        "stylegan2-church-config-f.pkl",
        "StyleGAN2 LSUN church 256x256 config-f, NVlabs TensorFlow pickle",
        "Original TensorFlow StyleGAN2 pickle; size and checksum not recorded.",
    ),
    _tf(
        "car-512",
        "stylegan2-car-config-f.pkl",
        "StyleGAN2 LSUN car 512 config-f (512x384 images), NVlabs TensorFlow pickle",
        "car-512: generator outputs 512x512 with padding; crop rows 64:448. Size and checksum not recorded.",
    ),
    _tf(
        "horse-256",
        "stylegan2-horse-config-f.pkl",
        "StyleGAN2 LSUN horse 256x256 config-f, NVlabs TensorFlow pickle",
        "Original TensorFlow StyleGAN2 pickle; size and checksum not recorded.",
    ),
    WeightSpec(
        name="ir-se50",
        filename="model_ir_se50.pth",
        kind="identity-irse50",
        # Drive id confirmed in both the pSp and the e4e README ("IR-SE50 Model").
        gdrive_id="1KW7bjndL3QG3sxBbZxreGHigcCCpsDgn",
        url=None,
        size=175_367_323,
        sha256="a035c768259b98ab1ce0e646312f48b9e1e218197a0f80ac6765e88f8b6ddf28",
        description="IR-SE50 ArcFace network for the identity loss (pSp release)",
        notes="TreB1eN InsightFace weights as released by pSp; Google Drive only.",
    ),
    WeightSpec(
        name="e4e-ffhq",
        filename="e4e_ffhq_encode.pt",
        kind="encoder-e4e",
        # Drive id confirmed in the e4e README ("FFHQ Inversion").
        gdrive_id="1cUv_reLE6k3604or78EranS7XzuVMWeO",
        url=None,
        size=1_201_649_680,
        sha256="2ace1d9a8c05c10a399bcd500b8dda118f759ff1aac89dbdab7435f2136a0999",
        description="e4e FFHQ encoder for inverting real images into W+",
        notes="Holds the whole pSp/e4e model (encoder and decoder); Google Drive only.",
    ),
]

# NVlabs' published StyleGAN3 generators, configs T (translation-equivariant) and R (also rotation-equivariant).
_ENTRIES += [
    _sg3(cfg, dataset, res, description)
    for dataset, res, description in [("ffhq", 1024, "FFHQ"), ("ffhqu", 1024, "FFHQ-U (unaligned)"),
                                      ("afhqv2", 512, "AFHQv2"), ("metfacesu", 1024, "MetFaces-U (unaligned)")]
    for cfg in ("t", "r")
]

# LPIPS-VGG for inversion (nada_utils/models/lpips.py). The VGG16 digest's first 8 hex digits are the ones
# torchvision puts in the file name; the heads are LPIPS v0.1's vgg.pth (the same bytes as in the lpips wheel).
_ENTRIES += [
    WeightSpec(name="vgg16", filename="vgg16-397923af.pth", kind="vgg16-imagenet", gdrive_id=None,
               url="https://download.pytorch.org/models/vgg16-397923af.pth", size=None,
               sha256="397923af8e79cdbb6a7127f12361acd7a2f83e06b05044ddf496e83de57a5bf0",
               description="torchvision ImageNet VGG16 (about 528 MB), the LPIPS-VGG backbone",
               notes="only its convolutional features are used"),
    WeightSpec(name="lpips-vgg", filename="vgg.pth", kind="lpips-heads", gdrive_id=None,
               url="https://raw.githubusercontent.com/richzhang/PerceptualSimilarity/master/lpips/weights/v0.1/vgg.pth",
               size=7_289, sha256="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
               description="LPIPS v0.1 linear heads for VGG16 (7 KB)", notes="BSD-2-Clause, from the LPIPS authors"),
]

# OpenAI's CLIP models, under the names `clip.available_models()` uses. Each URL carries the file's
# sha256 (clip.load's table).
_CLIP_BASE = "https://openaipublic.azureedge.net/clip/models/"


def _clip(name: str, sha256: str) -> WeightSpec:
    filename = name.replace("/", "-").replace("@", "-") + ".pt"
    return WeightSpec(name=name, filename=filename, kind="clip", gdrive_id=None,
                      url=f"{_CLIP_BASE}{sha256}/{filename}", size=None, sha256=sha256,
                      description=f"OpenAI CLIP {name} (TorchScript archive, fp16)",
                      notes="read without torch.jit.load: only its tensors are taken")


_ENTRIES += [
    _clip("RN50", "afeb0e10f9e5a86da6080e35cf09123aca3b358a0c3e3b6c78a7b63bc04b6762"),
    _clip("RN101", "8fa8567bab74a42d41c5915025a8e4538c3bdbe8804a470a72f30b0d94fab599"),
    _clip("RN50x4", "7e526bd135e493cef0776de27d5f42653e6b4c8bf9e0f653bb11773263205fdd"),
    _clip("RN50x16", "52378b407f34354e150460fe41077663dd5b39c54cd0bfd2b27167a4a06ec9aa"),
    _clip("RN50x64", "be1cfb55d75a9666199fb2206c106743da0f6468c9d327f3e0d0a543a9919d9c"),
    _clip("ViT-B/32", "40d365715913c9da98579312b702a82c18be219cc2a73407c4526f58eba950af"),
    _clip("ViT-B/16", "5806e77cd80f8b59890b7e101eabd078d9fb84e6937f9e85e4ecb61988df416f"),
    _clip("ViT-L/14", "b8cca3fd41ae0c99ba7e8951adf17d267cdb84cd88be6f7c2e0eca1737a03836"),
    _clip("ViT-L/14@336px", "3035c92b350959924f9f00213499208652fc7ea050643e8b385c2dac08641f02"),
]

# Shipped inside the package: the mini world's models, trained by its recipe (nada_utils/mini_world/recipe/;
# docs/MINI_WORLD.md, "Regenerating").
_ENTRIES += [
    # The mini world's: its CLIP guides training; the judge scores it and is never seen by training (docs/MINI_WORLD.md).
    WeightSpec(name="mini-clip-2", filename="mini_clip_2.pt", kind="clip", gdrive_id=None, url=None,
               size=8_477_821, sha256="3268c097e07c30a49fbd584131b87ce75f242dfd9253c1e85eb82463f5fa6c1f",
               description="mini world CLIP (64 px ViT, patch 16): knows the 4 domains and 3 hard negatives",
               notes="bundled; regenerate with python -m nada_utils.mini_world.recipe.train_clip --patch 16",
               bundled="mini_world/weights/mini_clip_2.pt"),
    # Adversarially fine-tuned from mini-clip-2 (L2 radius 1): gradients that follow what the images
    # show, so that training draws outlines instead of buying the text with what the judge calls
    # other domains (docs/MINI_WORLD.md). The sketch presets' CLIP.
    WeightSpec(name="mini-clip-2-robust", filename="mini_clip_2_robust.pt", kind="clip", gdrive_id=None, url=None,
               size=8_477_821, sha256="51c80748fc64f3e2db91a27b64e7701a155919cbe9b6a4e2bf3d64f0a653157a",
               description="mini world CLIP, patch 16, adversarially fine-tuned from mini-clip-2 (radius 1)",
               notes="bundled; regenerate with python -m nada_utils.mini_world.recipe.train_clip --init mini_clip_2.pt "
                     "--adv-eps 1 --patch 16 --steps 600 --lr 3e-4 --seed 3",
               bundled="mini_world/weights/mini_clip_2_robust.pt"),
    # No longer bundled (the robust CLIP took its place within the bundle's 40 MB); same checksum as shipped.
    WeightSpec(name="mini-clip-2-p32", filename="mini_clip_2_p32.pt", kind="clip", gdrive_id=None, url=None,
               size=9_064_573, sha256="34e0b0c8f1da56a8429ff981358b12840496b78f31a9d8f6d090c211c6b01259",
               description="mini world CLIP, patch 32 (its own seed): paired with mini-clip-2 as ViT-B/32 with ViT-B/16",
               restore="no longer shipped; restore the file with git show "
                       "fe3bccb:nada_utils/mini_world/weights/mini_clip_2_p32.pt > mini_clip_2_p32.pt (or regenerate it "
                       "with python -m nada_utils.mini_world.recipe.train_clip --patch 32 --steps 1000 --seed 1)"),
    # Class-conditional: the class is the shape (a step of one coordinate of z was more than regression
    # could teach a small generator; docs/MINI_WORLD.md). Names as world.SHAPES (tested).
    WeightSpec(name="mini-photo-2", filename="mini_photo_2.pt", kind="generator-rosinality", gdrive_id=None, url=None,
               size=3_331_273, sha256="42509758645f75b3c18ed7857e332c6a648ca8612ecbbaded7fbf7818060e0bd",
               description="mini world StyleGAN2, 64x64, class = shape: G(z, c) draws the photo of scene(z, c)",
               notes="bundled; regenerate with python -m nada_utils.mini_world.recipe.train_generator --conditional "
                     "(docs/MINI_WORLD.md)",
               bundled="mini_world/weights/mini_photo_2.pt", class_names=("circle", "square", "triangle")),
    WeightSpec(name="mini-judge", filename="mini_judge.pt", kind="mini-judge", gdrive_id=None, url=None,
               size=863_695, sha256="2f7644175de51487a33df17bee808fe485b984cd7ab7406f727fe91d184f3ae0",
               description="mini world judge (small CNN): domain of 7 (targets and hard negatives) and shape",
               notes="bundled; regenerate with python -m nada_utils.mini_world.recipe.train_judge",
               bundled="mini_world/weights/mini_judge.pt"),
]

REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in _ENTRIES}


def cache_dir() -> Path:
    """Return the weight cache directory: `$NADA_CACHE`, else `~/.cache/nada`."""
    # Read at call time so tests and notebooks can redirect the cache after import.
    value = os.environ.get("NADA_CACHE")
    return Path(value).expanduser() if value else Path.home() / ".cache" / "nada"


# Models nada no longer ships, and a commit where they still load: the first mini world's, whose CLIP
# told a sketch by its white page (docs/MINI_WORLD.md, "The world"). The commit is named so that a run
# dir made with them stays reachable; it is the last one before the work that retired them.
FIRST_WORLD_COMMIT = "7fbe104"
RETIRED = {"mini-photo": "the first mini world's generator", "mini-clip": "the first mini world's CLIP"}


def check_not_retired(name, run_dir=None) -> None:
    """Refuse, in one line, a model name that nada no longer ships (a run dir's, when `run_dir` is given)."""
    if str(name) in RETIRED:
        model = f"{name} ({RETIRED[str(name)]})"
        what = f"{run_dir} was made with {model}, retired" if run_dir is not None else f"{model} was retired"
        raise NadaError(f"{what} after commit {FIRST_WORLD_COMMIT}; to load {'this run' if run_dir else 'it'}, check out "
                        f"that commit (git checkout {FIRST_WORLD_COMMIT}), or train again with a mini-* preset")


def get_spec(name: str) -> WeightSpec:
    """Return the registry entry called `name`, or raise NadaError listing the known names."""
    try:
        return REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(REGISTRY))
        raise NadaError(
            f"unknown weight name {name!r}; known names: {known} "
            "(where a file is accepted, a path to a local file works too)"
        ) from None


def local_path(name: str) -> Path:
    """Return where the file for `name` lives: in the package if bundled, else in the cache (or put by hand)."""
    spec = get_spec(name)
    if spec.bundled:
        return Path(__file__).resolve().parents[1] / spec.bundled  # bundled paths are relative to nada_utils/
    return cache_dir() / spec.filename


def is_present(name: str) -> bool:
    """Return True when the file for `name` exists in the cache (no size or checksum check)."""
    return local_path(name).is_file()


def mirror_url(spec: WeightSpec) -> str | None:
    """Return `$NADA_MIRROR/<filename>` when `NADA_MIRROR` is set, else None.

    A mirror overrides every other source: for users behind a proxy or with a local copy server,
    and for tests that must not leave 127.0.0.1.
    """
    base = os.environ.get("NADA_MIRROR")
    if not base:
        return None
    return f"{base.rstrip('/')}/{spec.filename}"
