"""Per-pixel class maps (``data.a.labels``, ``data.b.labels``: ``cgx.config.LabelSpec``): the one reader of a
label map, for the folder and shard sources, ``cgx shards`` and ``cgx eval --labels``.

A label map is a PNG the size of its image:

- **class indices**: mode ``L`` (8-bit grey), ``P`` (a palette image: its indices are the classes, as
  Pascal VOC's are; its colours are only how viewers show it), or 16-bit grey (``I;16``, ``I``) for more
  than 256 classes; each pixel holds a class 0 .. classes-1, or ``ignore_index`` (no class: void);
- **colour-coded** (``RGB``, ``RGBA`` without transparency used): each pixel's colour is looked up in the
  recipe's ``palette`` (class k is ``palette[k]``; a colour not in it is an error).

Anything else (another mode, a class out of range, a colour not in the palette, a size unlike the image's)
is a DataError naming the file, what was found and what is accepted; the sources then treat the sample as
unreadable (``data.on_corrupt``). Read maps are ``numpy.int64`` arrays (H, W); ``ignore_index`` stays as it is.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from ..config import LabelSpec
from ..errors import DataError

LABEL_SUFFIX = ".png"
"""Label maps are PNG files (lossless): ``{phase}A_labels/<the image's relative path, .png>``."""
INDEX_MODES = ("L", "P", "I;16", "I;16L", "I;16B", "I")
COLOUR_MODES = ("RGB", "RGBA")
MAX_LABEL_PIXELS = 89_478_485
"""The largest label map read (pixels), checked from the header before decoding (PIL's own limit)."""


def labels_folder(images: Path) -> Path:
    """The label maps' folder of an image folder: ``trainA`` -> ``trainA_labels`` (beside it)."""
    images = Path(images)
    return images.with_name(f"{images.name}_labels")


def label_path(image: Path, images: Path, labels: Path) -> Path:
    """The label map of ``image`` (a file under the folder ``images``): the same relative path under
    ``labels``, with the suffix ``.png``."""
    return Path(labels) / Path(image).relative_to(images).with_suffix(LABEL_SUFFIX)


def label_files(files: list[Path], images: Path, labels: Path, key: str) -> list[Path]:
    """The label map of each image of ``files``; a DataError naming the first image without one (and how
    many have none) when any is missing."""
    labels = Path(labels)
    if not labels.is_dir():
        raise DataError(f"{key}: the label maps' folder {labels} is not found (label maps of {images}/ go in "
                        f"{labels.name}/ beside it: the same file names, .png)")
    out = [label_path(f, images, labels) for f in files]
    missing = [(f, p) for f, p in zip(files, out) if not p.is_file()]
    if missing:
        (image, path), more = missing[0], len(missing) - 1
        raise DataError(f"{key}: the image {image} has no label map {path}"
                        f"{f' (and {more} more images have none)' if more else ''}; every image of a domain with "
                        f"labels needs one (the same relative path under {labels.name}/, .png)")
    return out


def describe(spec: LabelSpec) -> str:
    """What a label map of ``spec`` may hold, for errors."""
    colours = f", or RGB colours of the palette's {len(spec.palette)}" if spec.palette is not None else ""
    return f"classes 0..{spec.classes - 1} or ignore_index {spec.ignore_index}{colours}"


def decode_label_map(data: bytes, name: str, spec: LabelSpec, size: tuple[int, int] | None = None,
                     key: str = "labels") -> np.ndarray:
    """A label map file's bytes as an int64 array (H, W); ``size``: its image's (width, height), which it
    must have. DataError naming ``name`` for anything it cannot be (see the module's docstring); ``key``
    (``data.a.labels``) names the recipe section the accepted values come from."""
    if not data:
        raise DataError(f"cannot read label map {name}: the file is empty (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            im = Image.open(io.BytesIO(data))
        w, h = im.size
        if w * h > MAX_LABEL_PIXELS:
            raise DataError(f"label map {name} declares {w}x{h} pixels, more than {MAX_LABEL_PIXELS:,}; not decoded")
        if size is not None and (w, h) != tuple(size):
            raise DataError(f"label map {name} is {w}x{h}, its image is {size[0]}x{size[1]}: a label map must be "
                            f"the size of its image")
        if im.format != "PNG":
            raise DataError(f"label map {name} is {im.format or 'not a known'} image; label maps are PNG "
                            f"(lossless: a JPEG's compression changes classes at every edge)")
        mode = im.mode
        im.load()
        if mode in INDEX_MODES:
            classes = np.asarray(im).astype(np.int64)
        elif mode in COLOUR_MODES:
            classes = _from_palette(np.asarray(im.convert("RGB")), spec, name, key)
        else:
            raise DataError(f"label map {name} is a PNG of mode {mode}; label maps are class indices (mode L, P or "
                            f"16-bit grey) or RGB colours of {key}.palette")
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
        raise DataError(f"cannot read label map {name}: {type(e).__name__}: {e}") from None
    if mode in INDEX_MODES:
        check_classes(classes, spec, name, key)
    return classes


def check_label_file(data: bytes, name: str, size: tuple[int, int]) -> None:
    """What ``cgx shards`` checks of a label map before storing its bytes (it knows no recipe, so no class
    count or palette): a PNG of a label map's modes, the size of its image; else a DataError naming it."""
    try:
        im = Image.open(io.BytesIO(data))
        fmt, mode, found = im.format, im.mode, im.size
    except Exception as e:  # noqa: BLE001
        raise DataError(f"cannot read label map {name}: {type(e).__name__}: {e}") from None
    if fmt != "PNG" or mode not in INDEX_MODES + COLOUR_MODES:
        raise DataError(f"label map {name} is {fmt or 'an unknown format'} of mode {mode}; label maps are PNG of class "
                        f"indices (mode L, P or 16-bit grey) or RGB colours")
    if found != tuple(size):
        raise DataError(f"label map {name} is {found[0]}x{found[1]}, its image is {size[0]}x{size[1]}: a label map "
                        f"must be the size of its image")


def read_label_map(path: str | Path, spec: LabelSpec, size: tuple[int, int] | None = None,
                   key: str = "labels") -> np.ndarray:
    """The label map at ``path`` (``decode_label_map``); DataError naming the file if it cannot be read."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read label map {path}: {e.strerror or e}") from None
    return decode_label_map(data, str(path), spec, size, key)


def check_classes(classes: np.ndarray, spec: LabelSpec, name: str, key: str = "labels") -> None:
    """DataError naming ``name``, the first bad value and where it is, when ``classes`` holds a value that is
    neither a class (0 .. classes-1) nor ``ignore_index``."""
    bad = ((classes < 0) | (classes >= spec.classes)) & (classes != spec.ignore_index)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise DataError(f"label map {name} holds {int(classes[y, x])} at x={x}, y={y} ({int(bad.sum())} such pixels); "
                        f"{key} accepts {describe(spec)} ({key}.classes is {spec.classes})")


def _from_palette(rgb: np.ndarray, spec: LabelSpec, name: str, key: str) -> np.ndarray:
    """The classes of an RGB label map (H, W, 3) through ``spec.palette``."""
    if spec.palette is None:
        raise DataError(f"label map {name} is an RGB image, and {key}.palette is not set: give the classes' colours "
                        f"in {key}.palette, or use label maps of class indices (mode L, P or 16-bit grey)")
    codes = colour_codes(rgb)
    palette = colour_codes(np.asarray(spec.palette, dtype=np.int64).reshape(1, -1, 3))[0]
    order = np.argsort(palette)
    at = np.clip(np.searchsorted(palette[order], codes), 0, len(palette) - 1)
    found = palette[order][at] == codes
    if not found.all():
        y, x = np.argwhere(~found)[0]
        colour = [int(c) for c in rgb[y, x]]
        raise DataError(f"label map {name} has the colour {colour} at x={x}, y={y} ({int((~found).sum())} such pixels), "
                        f"which is not in {key}.palette (its {len(palette)} colours are the classes 0..{len(palette) - 1})")
    return order[at].astype(np.int64)


def colour_codes(rgb: np.ndarray) -> np.ndarray:
    """(..., 3) colours 0..255 as one integer each (r << 16 | g << 8 | b)."""
    rgb = rgb.astype(np.int64)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def encode_label_map(classes: np.ndarray) -> bytes:
    """A class map (H, W) as PNG bytes: 8-bit grey where every value fits, else 16-bit grey."""
    classes = np.asarray(classes)
    if classes.min(initial=0) < 0 or classes.max(initial=0) > 65535:
        raise ValueError("label values must be 0..65535")
    if classes.max(initial=0) <= 255:
        image = Image.fromarray(classes.astype(np.uint8), "L")
    else:
        image = Image.fromarray(classes.astype(np.uint16))  # mode I;16
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()
