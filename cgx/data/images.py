"""Finding and reading image files, and the one conversion of every image mode to 8-bit RGB."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")
BACKGROUND = (255, 255, 255)
"""Transparent pixels (RGBA, LA, PA, palette with transparency) are composited onto white."""
_WIDE_INT_MODES = ("I", "I;16", "I;16L", "I;16B", "I;16N")
"""Integer grey modes PIL gives 16-bit images (PNG, TIFF): values 0..65535, scaled to 0..255."""


def list_images(folder: str | Path) -> list[Path]:
    """All images under ``folder`` (recursive), sorted, so every rank sees the same list."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    return files


def to_rgb(image: Image.Image) -> Image.Image:
    """Any image PIL opens as 8-bit RGB, the same way wherever cgx reads images.

    - 16-bit and 32-bit integer grey (``I;16``, ``I``): 0..65535 scaled to 0..255 (PIL's own
      ``convert`` clips at 255, which makes a 16-bit image all white);
    - with transparency (``RGBA``, ``LA``, ``PA``, ``P`` with a transparent colour): composited
      onto white, so hidden pixels never show whatever colour they happen to hold;
    - everything else (``1``, ``L``, ``P``, ``CMYK``, ``YCbCr``, ``F`` clipped to 0..255): PIL's
      ``convert("RGB")``."""
    if image.mode == "RGB":
        return image.copy()
    if image.mode in _WIDE_INT_MODES:
        wide = np.asarray(image).astype(np.int64)
        grey = (np.clip(wide, 0, 65535) * 255 + 32767) // 65535
        return Image.fromarray(grey.astype(np.uint8), "L").convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
        rgba = image.convert("RGBA")
        sheet = Image.new("RGB", rgba.size, BACKGROUND)
        sheet.paste(rgba, mask=rgba.getchannel("A"))
        return sheet
    return image.convert("RGB")


def decode_rgb(data: bytes, name: str, spec=None) -> Image.Image:
    """Image file bytes as 8-bit RGB (``to_rgb``), turned upright as their EXIF orientation says;
    DataError naming ``name`` if they do not decode, or declare more pixels than ``spec.max_pixels``
    (default: the default spec's; checked from the header, nothing decoded). (The default domain spec's
    decode, ``cgx.data.decode``.)"""
    from .decode import DEFAULT, open_image, upright

    if not data:
        raise DataError(f"cannot read image {name}: the file is empty (0 bytes)")
    try:
        with open_image(data, name, spec or DEFAULT) as im:
            im.load()
            return to_rgb(upright(im))
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
        raise DataError(f"cannot read image {name}: {type(e).__name__}: {e}") from None


def load_rgb(path: str | Path, spec=None) -> Image.Image:
    """The image file at ``path`` as 8-bit RGB; DataError naming the file if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    return decode_rgb(data, str(path), spec)
