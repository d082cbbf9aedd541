"""Writing and reading video files: MP4 through PyAV (its wheel carries FFmpeg and libx264), GIF through Pillow.

MP4 is H.264 in yuv420p, the one combination that browsers, Colab and phones all play. Its frames
are encoded as they arrive, so a long video needs no more memory than a batch of frames. A GIF
cannot be written before its last frame (Pillow builds it whole), so its frames are kept as
256-colour images, a third of their RGB size; very long GIFs are refused for MP4. Both are written
to a temporary file and renamed when complete: a stopped render leaves no half-written video.
PyAV is optional (`pip install av`, or `pip install "nada[video]"`); without it GIFs still work.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np

from nada_utils.errors import NadaError
from nada_utils.fileio import atomic_path

FORMATS = (".mp4", ".gif")
GIF_LIMIT_BYTES = 1 << 30  # 1 GiB of 256-colour frames held until the GIF is written
INSTALL_AV = "MP4 needs PyAV: pip install av (or pip install \"nada[video]\"); or write a .gif instead"


def video_format(path) -> str:
    """".mp4" or ".gif" for `path`, or a NadaError naming the choices."""
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise NadaError(f"{path}: a video must end in .mp4 or .gif")
    return suffix


def require_av():
    """The `av` module, or a one-line NadaError saying how to install it."""
    try:
        import av
    except ImportError:
        raise NadaError(INSTALL_AV) from None
    return av


def check_writable(path, *, frames: int, width: int, height: int) -> None:
    """Everything that can refuse a video before any frame is rendered."""
    if video_format(path) == ".mp4":
        require_av()
    elif frames * width * height > GIF_LIMIT_BYTES:
        raise NadaError(f"a GIF of {frames} frames of {width}x{height} px is too large to build in memory; "
                        "write an .mp4, or lower --seconds, --fps or --size")


class VideoWriter:
    """`with VideoWriter(path, fps, width, height) as w: w.write(frames)`; frames `[B, H, W, 3]` uint8."""

    def __init__(self, path, *, fps: int, width: int, height: int, crf: int = 20):
        self.path, self.fps, self.width, self.height, self.crf = Path(path), int(fps), width, height, crf
        self.format = video_format(path)
        self.frames = 0
        self._gif: list = []

    def __enter__(self):
        self._tmp_cm = atomic_path(self.path)
        self._tmp = self._tmp_cm.__enter__()
        if self.format == ".mp4":
            av = require_av()
            # +faststart puts the index first, so browsers start playing before the whole file has arrived.
            self._container = av.open(str(self._tmp), mode="w", format="mp4", container_options={"movflags": "+faststart"})
            self._stream = self._container.add_stream("libx264", rate=self.fps)
            self._stream.width, self._stream.height = self.width, self.height
            self._stream.pix_fmt = "yuv420p"
            self._stream.options = {"crf": str(self.crf), "preset": "medium"}  # crf 20: clean at small sizes
        return self

    def write(self, frames: np.ndarray) -> None:
        if frames.shape[1:] != (self.height, self.width, 3) or frames.dtype != np.uint8:
            raise ValueError(f"frames must be [B, {self.height}, {self.width}, 3] uint8, got {frames.shape} {frames.dtype}")
        for frame in frames:
            if self.format == ".mp4":
                import av

                for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")):
                    self._container.mux(packet)
            else:
                from PIL import Image

                self._gif.append(Image.fromarray(frame).quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE))
            self.frames += 1

    def __exit__(self, exc_type, exc, tb):
        # The temporary file is renamed only when every frame and the file's end were written; any
        # error, here or while finishing (a full disk), removes it instead.
        if exc_type is None:
            try:
                self._finish()
            except BaseException as error:
                self._tmp_cm.__exit__(type(error), error, error.__traceback__)
                raise
            return self._tmp_cm.__exit__(None, None, None)
        if self.format == ".mp4":
            with contextlib.suppress(Exception):
                self._container.close()
        return self._tmp_cm.__exit__(exc_type, exc, tb)

    def _finish(self) -> None:
        if self.format == ".mp4":
            for packet in self._stream.encode():  # flush the encoder's delayed frames
                self._container.mux(packet)
            self._container.close()
            return
        if not self._gif:
            raise ValueError("no frames were written")
        first, *rest = self._gif
        # GIF delays are in hundredths of a second; loop=0 repeats forever.
        first.save(self._tmp, format="GIF", save_all=True, append_images=rest, duration=round(1000 / self.fps),
                   loop=0, disposal=1, optimize=False)
        self._gif = []


def read_video(path) -> tuple[np.ndarray, float]:
    """(frames `[T, H, W, 3]` uint8, frames per second) of an MP4 (through PyAV) or a GIF (through Pillow)."""
    if video_format(path) == ".mp4":
        av = require_av()
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
            fps = float(stream.average_rate)
        return np.stack(frames), fps
    from PIL import Image, ImageSequence

    with Image.open(path) as im:
        frames = [np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(im)]
        fps = 1000 / (im.info.get("duration") or 100)
    return np.stack(frames), fps
