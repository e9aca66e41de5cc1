"""Finding and reading image files."""
from __future__ import annotations

from pathlib import Path

from PIL import Image

from ..errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def list_images(folder: str | Path) -> list[Path]:
    """All images under ``folder`` (recursive), sorted, so every rank sees the same list."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(f"image folder not found: {folder}")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"no images in {folder} (looked for {', '.join(IMAGE_EXTENSIONS)}, recursively)")
    return files


def load_rgb(path: str | Path) -> Image.Image:
    try:
        with Image.open(path) as im:
            return im.convert("RGB")
    except Exception as e:
        raise DataError(f"cannot read image {path}: {e}") from None
