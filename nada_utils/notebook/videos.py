"""Videos in the notebooks: render with `nada_utils.video`, save under results/, and play inline.

MP4 when PyAV is installed (the notebooks install it in Colab), else a GIF, so a missing encoder
never stops a notebook. Videos are embedded in the page, so they play in Colab and in saved notebooks.
"""

from __future__ import annotations

from pathlib import Path

from nada_utils.invert.inversion import Inversion
from nada_utils.notebook.inversion import image_folder
from nada_utils.video.render import make_video


def video_suffix() -> str:
    """".mp4" when PyAV can encode it, else ".gif" (with a line saying how to get MP4)."""
    try:
        import av  # noqa: F401
    except ImportError:
        print("PyAV is not installed, so this video is a GIF; `pip install av` gives MP4")
        return ".gif"
    return ".mp4"


def show_video(path) -> None:
    """Play an MP4 or GIF inline (embedded, looping)."""
    from IPython.display import Image, Video, display

    path = Path(path)
    if path.suffix.lower() == ".gif":
        display(Image(filename=str(path)))
    else:
        display(Video(str(path), embed=True, html_attributes="controls autoplay loop muted playsinline"))


def show_walk(G_frozen, G_adapted: dict, seeds, *, save_to, kind: str = "walk", seconds: float = 4.0,
              fps: int = 24, size: int | None = None, truncation: float = 0.7, class_idx: int | None = None) -> Path:
    """A walk (or `kind="morph"`) through `seeds`, frozen and adapted generators side by side, saved as
    `save_to`/KIND.mp4 (or .gif) and played inline."""
    out = Path(save_to) / f"{kind}{video_suffix()}"
    video = make_video(out, G_frozen, G_adapted, kind=kind, seeds=seeds, seconds=seconds, fps=fps, size=size,
                       truncation=truncation, class_idx=class_idx)
    print(f"saved {video.path} ({video.frames} frames, {video.width}x{video.height} px, rendered in "
          f"{video.seconds_taken:.0f} s)")
    show_video(video.path)
    return video.path


def show_photo_morph(inv: Inversion, G_frozen, G_adapted: dict, *, save_to, seconds: float = 4.0, fps: int = 24,
                     size: int | None = None) -> Path:
    """Your inverted photo morphing from the frozen generator into every adapted domain and back, saved as
    `save_to`/IMAGE_NAME/morph.mp4 (or .gif) and played inline."""
    out = image_folder(inv, save_to) / f"morph{video_suffix()}"
    video = make_video(out, G_frozen, G_adapted, kind="photo", latents={"ws": inv.result.ws, "noise": inv.result.noise},
                       seconds=seconds, fps=fps, size=size)
    print(f"saved {video.path} ({video.frames} frames, rendered in {video.seconds_taken:.0f} s)")
    show_video(video.path)
    return video.path
