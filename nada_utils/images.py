"""Turning generator outputs into pictures: [-1, 1] tensors to uint8, grids and PNG files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from nada_utils.fileio import atomic_open


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """`[N, 3, H, W]` in about [-1, 1] -> `[N, H, W, 3]` uint8 on the CPU (values clipped)."""
    x = (images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5
    return x.round().to(torch.uint8).permute(0, 2, 3, 1)


def image_grid(images: torch.Tensor, *, nrow: int | None = None, pad: int = 2,
               column_labels: list[str] | None = None) -> torch.Tensor:
    """Tile `[N, 3, H, W]` images into one `[3, H', W']` image with `nrow` per row and white gaps;
    `column_labels` (one per column) are written in a strip above the first row."""
    n, c, h, w = images.shape
    nrow = nrow or min(n, 8)
    rows = (n + nrow - 1) // nrow
    top = label_height(w) if column_labels else 0
    grid = images.new_ones(c, top + rows * (h + pad) + pad, nrow * (w + pad) + pad)
    for i in range(n):
        r, col = divmod(i, nrow)
        y, x = top + pad + r * (h + pad), pad + col * (w + pad)
        grid[:, y:y + h, x:x + w] = images[i]
    if column_labels:
        from PIL import Image

        strip = Image.new("RGB", (grid.shape[2], top), "white")
        draw_labels(strip, [(text, pad + col * (w + pad) + w / 2, top / 2) for col, text in enumerate(column_labels)],
                    width=w, height=top)
        pixels = torch.from_numpy(np.asarray(strip).copy()).permute(2, 0, 1).to(grid)
        grid[:, :top] = pixels / 127.5 - 1
    return grid


def label_height(size: int) -> int:
    """Height of a name strip over `size` px cells: readable at 64 px, not dominant at 1024."""
    return 2 * max(6, min(16, size // 10))


def draw_labels(canvas, labels: list[tuple[str, float, float]], *, width: int, height: int) -> None:
    """Write each (text, centre x, centre y) on PIL image `canvas` in black, shortened with an
    ellipsis to fit `width` px, in a font that fits a strip `height` px tall."""
    from PIL import ImageDraw, ImageFont

    draw = ImageDraw.Draw(canvas)
    try:
        font = ImageFont.load_default(size=height - 4)
    except TypeError:  # Pillow < 10.1 has only the fixed bitmap font
        font = ImageFont.load_default()
    for text, x, y in labels:
        while text and draw.textlength(text, font=font) > width:
            text = text[:-2] + "…" if len(text) > 2 else ""
        draw.text((x, y), text, fill="black", font=font, anchor="mm")


def save_image(image: torch.Tensor, path) -> Path:
    """Write one `[3, H, W]` image in [-1, 1] as a PNG, atomically."""
    with atomic_open(path, "wb") as f:
        f.write(png_bytes(image))
    return Path(path)


MIN_SIDE = 16  # smaller images carry too little to invert or to guide a style
MAX_PIXELS = 50_000_000  # 50 megapixels: larger files are refused before they are decoded


def open_image(path):
    """Read any image PIL can open -> an upright RGB PIL image, refusing what cannot be used.

    Grey, palette and CMYK images are converted to RGB; transparent ones are laid on white; phone
    photos are turned upright from their EXIF orientation. Images under 16 px a side or over 50
    megapixels, and files that are not (whole) images, are refused with a NadaError that names the
    file; the size check reads only the header.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    from nada_utils.errors import NadaError

    try:
        with Image.open(path) as im:
            w, h = im.size
            if min(w, h) < MIN_SIDE:
                raise NadaError(f"{path} is {w}x{h} px; images need at least {MIN_SIDE} px a side")
            if w * h > MAX_PIXELS:
                raise NadaError(f"{path} is {w}x{h} px ({w * h / 1e6:.0f} megapixels); the limit is "
                                f"{MAX_PIXELS // 1_000_000}: downscale it first")
            im.load()
            im = ImageOps.exif_transpose(im)
            if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
                rgba = im.convert("RGBA")
                im = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                im.alpha_composite(rgba)
            return im.convert("RGB")
    except NadaError:
        raise
    except Image.DecompressionBombError:  # PIL's own guard, far above ours, fires inside open()
        raise NadaError(f"{path} is over {MAX_PIXELS // 1_000_000} megapixels; downscale it first") from None
    except FileNotFoundError:
        raise NadaError(f"image not found: {path}") from None
    except IsADirectoryError:
        raise NadaError(f"{path} is a folder, not an image") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise NadaError(f"{path} is not an image PIL can read, or is damaged ({type(e).__name__}); "
                        f"use a PNG or JPEG") from None


def pil_to_tensor(im, size: int) -> torch.Tensor:
    """An RGB PIL image -> `[3, size, size]` in [-1, 1]: centre-cropped square, resized with Lanczos."""
    from PIL import Image

    w, h = im.size
    side = min(w, h)
    im = im.crop(((w - side) // 2, (h - side) // 2, (w - side) // 2 + side, (h - side) // 2 + side))
    im = im.resize((size, size), Image.LANCZOS)
    x = torch.frombuffer(bytearray(im.tobytes()), dtype=torch.uint8).view(size, size, 3)
    return x.permute(2, 0, 1).float() / 127.5 - 1


def load_image(path, size: int) -> torch.Tensor:
    """Read any image PIL can open (checked as `open_image` does) -> `[3, size, size]` in [-1, 1], centre-cropped."""
    return pil_to_tensor(open_image(path), size)


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def load_image_folder(folder, size: int) -> torch.Tensor:
    """All images of a folder -> `[N, 3, size, size]` in [-1, 1]; an empty or missing folder is an error."""
    from nada_utils.errors import NadaError

    folder = Path(folder)
    if folder.is_file():
        raise NadaError(f"{folder} is a file; --style-images takes a folder of images (put the image in one)")
    if not folder.is_dir():
        raise NadaError(f"style image folder not found: {folder}")
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise NadaError(f"no images ({', '.join(IMAGE_SUFFIXES)}) in {folder}")
    return torch.stack([load_image(p, size) for p in files])


def png_bytes(image: torch.Tensor) -> bytes:
    """One `[3, H, W]` image in [-1, 1] as PNG bytes (for notebook widgets and displays)."""
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(to_uint8(image[None])[0].numpy()).save(buf, format="PNG")
    return buf.getvalue()
