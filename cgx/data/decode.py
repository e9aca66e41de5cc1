"""The one decode of an image file per domain spec (``data.a``, ``data.b``: ``cgx.config.ImageSpec``),
and the one encode of a translated image, used by the folder and shard sources, ``cgx shards``,
``cgx translate``, ``cgx grid`` and ``cgx eval``.

- The default spec (3 channels, 8 bit) is today's path, bit for bit: ``cgx.data.images.decode_rgb``
  (every mode to 8-bit RGB) and the PIL augmentation.
- Any other spec reads the file's own samples at their own depth: 8-bit and 16-bit PNG (16-bit RGB
  PNG through pypng, as PIL reads it as 8 bits), TIFF through tifffile (any number of channels,
  interleaved or planar or one band a page; 8-bit, 16-bit or float samples), and everything PIL opens.
  Samples are scaled from their range (0..255, 0..65535, float 0..1) to [-1, 1] in float32.
- A file that does not fit the spec is converted only where that is lossless and obvious: a grey
  file into a 3-channel domain (the channel repeated), 8-bit samples into a 16-bit or float domain,
  16-bit into float. Anything else is a DataError naming the file, what it is and what the domain
  accepts (``data.on_corrupt`` then skips or stops).
- EXIF orientation (phone photos: tag 274) is applied everywhere, so images train and translate the
  way a viewer shows them; outputs are written upright, with no orientation tag.
- Before any pixel is decoded, the size the file's header declares is checked against the domain's
  ``max_pixels`` (width x height, channels beyond 3 counted too) and, for a non-default spec, its
  channel count against the spec's: a few KB declaring GBs (a tiled TIFF of empty tiles, a PNG of
  one colour) is a one-line DataError, never an allocation.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..config import ImageSpec
from ..errors import DataError, SetupError
from ..extras import install_hint

DEFAULT = ImageSpec()
ORIENTATION = 0x0112
"""EXIF tag 274: how the stored pixels must be turned to be shown upright (1: as stored)."""
_TIFF_MAGIC = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_MAX = {8: 255.0, 16: 65535.0, "float": 1.0}
EXTRAS = f"{install_hint('images')} (tifffile, pypng)"


# --- orientation ------------------------------------------------------------------------------------

def orient(array: np.ndarray, orientation: int | None) -> np.ndarray:
    """An (H, W, C) array as EXIF ``orientation`` says it is shown (the same as PIL's ``exif_transpose``)."""
    o = orientation or 1
    if o == 2:
        array = array[:, ::-1]
    elif o == 3:
        array = array[::-1, ::-1]
    elif o == 4:
        array = array[::-1]
    elif o == 5:
        array = array.transpose(1, 0, 2)
    elif o == 6:
        array = np.rot90(array, -1)
    elif o == 7:
        array = array[::-1, ::-1].transpose(1, 0, 2)
    elif o == 8:
        array = np.rot90(array, 1)
    return np.ascontiguousarray(array)


def pil_orientation(image: Image.Image) -> int:
    try:
        value = image.getexif().get(ORIENTATION, 1)
    except Exception:  # noqa: BLE001 -- a damaged EXIF block: show as stored
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image) -> Image.Image:
    """``image`` turned as its EXIF orientation says (itself when it has none)."""
    o = pil_orientation(image)
    if o == 1:
        return image
    method = {2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
              5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
              8: Image.Transpose.ROTATE_90}[o]
    return image.transpose(method)


def swaps_sides(orientation: int) -> bool:
    return orientation in (5, 6, 7, 8)


# --- sizes declared in the header, checked before decoding --------------------------------------------

def check_declared(width: int, height: int, channels: int, depth: int | str | None, spec: ImageSpec,
                   name: str) -> None:
    """DataError naming ``name`` when the header's ``width`` x ``height`` x ``channels`` is more than the
    domain may read (``spec.max_pixels``; more than 3 channels count channels/3 times), or, for a non-default
    spec, when ``channels`` or ``depth`` (None: not known before decoding) cannot become the spec's (``fit``'s
    rule, in its words), so that nothing is decoded for it."""
    limit = spec.max_pixels
    if width * height * max(channels, 3) > limit * 3:
        bands = f" x {channels} channels" if channels > 3 else ""
        raise DataError(f"image {name} declares {width}x{height} pixels{bands}, more than the {limit:,} of "
                        f"data.a/b.max_pixels; not decoded (raise data.a.max_pixels or data.b.max_pixels, or cgx shards "
                        f"--max-pixels, to read it)")
    if spec.is_default:
        return
    order = {8: 0, 16: 1, "float": 2}
    if (channels != spec.channels and not (channels == 1 and spec.channels == 3)) or \
            (depth is not None and order[depth] > order[spec.depth]):
        what = f"{_describe(channels, depth)}" if depth is not None else f"{channels}-channel"
        raise DataError(f"image {name} is {what} ({width}x{height}), its domain is {spec.describe()}: "
                        f"{_accepted(spec)}")


_PIL_CHANNELS = {"1": 1, "L": 1, "I": 1, "F": 1, "I;16": 1, "I;16L": 1, "I;16B": 1, "I;16N": 1, "LA": 2, "RGB": 3,
                 "RGBA": 4}


def _pil_channels(im: Image.Image, spec: ImageSpec) -> tuple[int, int | str | None]:
    """The channels and depth ``im`` is read as: for the default spec what PIL decodes (its bands), else
    what ``_pil_samples`` makes of its mode (a palette: RGB or RGBA); depth None for a mode it refuses."""
    if spec.is_default:
        return max(len(im.getbands()), 1), None
    if im.mode == "P":
        return (4 if "transparency" in im.info else 3), 8
    if im.mode not in _PIL_CHANNELS:
        return len(im.getbands()), None
    if im.format == "PNG" and _is_png16_rgb(im):
        return _PIL_CHANNELS[im.mode], 16
    depth = 16 if im.mode.startswith("I") else "float" if im.mode == "F" else 8
    return _PIL_CHANNELS[im.mode], depth


def _is_png16_rgb(im: Image.Image) -> bool:
    """A 16-bit RGB, RGBA or grey+alpha PNG, which PIL reads as 8 bits (read through pypng instead)."""
    rawmode = im.tile[0].args if im.tile else ""
    return isinstance(rawmode, str) and rawmode.endswith(";16B") and im.mode in ("RGB", "RGBA", "LA")


def open_image(data: bytes, name: str, spec: ImageSpec) -> Image.Image:
    """``Image.open`` of the bytes, its header checked (``check_declared``) before anything is decoded.
    PIL's own warning for a large image is left out: cgx's check has been made."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        im = Image.open(io.BytesIO(data))
    try:
        w, h = im.size
        check_declared(w, h, *_pil_channels(im, spec), spec, name)
    except BaseException:
        im.close()
        raise
    return im


# --- reading samples ----------------------------------------------------------------------------------

def is_tiff(data: bytes) -> bool:
    return data[:4] in _TIFF_MAGIC


def read_samples(data: bytes, name: str, spec: ImageSpec = DEFAULT) -> tuple[np.ndarray, int | str]:
    """The file's samples as an upright (H, W, C) array and their depth (8, 16 or "float");
    DataError naming ``name`` if they cannot be read as such, or if the header declares more than
    ``spec`` reads (``check_declared``: then nothing is decoded)."""
    if not data:
        raise DataError(f"cannot read image {name}: the file is empty (0 bytes)")
    if is_tiff(data):
        try:
            import tifffile  # noqa: F401
        except ImportError:
            pass
        else:
            return _read_tiff(data, name, spec)
    try:
        with open_image(data, name, spec) as im:
            if im.format == "PNG" and _is_png16_rgb(im):
                array = _read_png16(data, name)
                return orient(array, pil_orientation(im)), 16
            im.load()
            array, depth = _pil_samples(im, name)
            return orient(array, pil_orientation(im)), depth
    except (DataError, SetupError):
        raise
    except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
        hint = f" (a multi-channel or float TIFF needs tifffile: {EXTRAS})" if is_tiff(data) else ""
        raise DataError(f"cannot read image {name}: {type(e).__name__}: {e}{hint}") from None


def _pil_samples(im: Image.Image, name: str) -> tuple[np.ndarray, int | str]:
    mode = im.mode
    if mode == "1":
        return (np.asarray(im.convert("L"))[..., None]), 8
    if mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
        mode = im.mode
    if mode in ("L", "RGB", "RGBA", "LA"):
        a = np.asarray(im)
        return (a[..., None] if a.ndim == 2 else a), 8
    if mode.startswith("I;16"):
        return np.asarray(im).astype(np.uint16)[..., None], 16
    if mode == "I":
        a = np.asarray(im)
        if a.min() < 0 or a.max() > 65535:
            raise DataError(f"cannot read image {name}: 32-bit integer samples outside 0..65535 "
                            f"(accepted: 8-bit or 16-bit samples, or float)")
        return a.astype(np.uint16)[..., None], 16
    if mode == "F":
        return np.asarray(im).astype(np.float32)[..., None], "float"
    raise DataError(f"cannot read image {name}: mode {mode} has no lossless reading as channels "
                    f"(accepted: grey, RGB, RGBA, 16-bit grey or RGB, float; for {mode} use data.a/b channels: 3, depth: 8)")


def _read_png16(data: bytes, name: str) -> np.ndarray:
    try:
        import png
    except ImportError:
        raise SetupError(f"{name}: a 16-bit RGB PNG (PIL reads it as 8 bits) needs pypng: {EXTRAS}") from None
    w, h, rows, info = png.Reader(bytes=data).asDirect()
    planes = info["planes"]
    array = np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(h, w, planes)
    return array


def _tiff_layout(shape: tuple[int, ...], axes: str, name: str) -> tuple[str, list[int], int, int, int]:
    """(the axes left when length-1 ones are dropped, their lengths, height, width, channels) of a TIFF series;
    DataError for a layout that is not one image of height x width x channels."""
    kept = [(a, n) for a, n in zip(axes, shape) if n != 1 or a in "YX"]
    squeezed, dims = "".join(a for a, _ in kept), [n for _, n in kept]
    if squeezed == "YX":
        return squeezed, dims, dims[0], dims[1], 1
    if len(squeezed) == 3 and squeezed.endswith("YX"):
        return squeezed, dims, dims[1], dims[2], dims[0]
    if len(squeezed) == 3 and squeezed.startswith("YX"):
        return squeezed, dims, dims[0], dims[1], dims[2]
    raise DataError(f"cannot read image {name}: a TIFF of axes {axes} {tuple(shape)}; accepted: one image "
                    f"of height x width x channels (interleaved, planar, or one band a page)")


def _tiff_depth(dtype: np.dtype) -> int | str | None:
    """The depth samples of ``dtype`` are read as (None: refused once read, naming the type)."""
    if dtype in (np.uint8, np.bool_):
        return 8
    if dtype == np.uint16:
        return 16
    return "float" if np.dtype(dtype).kind == "f" else None


def _read_tiff(data: bytes, name: str, spec: ImageSpec = DEFAULT) -> tuple[np.ndarray, int | str]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tf:
            series = tf.series[0]
            squeezed, dims, h, w, c = _tiff_layout(tuple(series.shape), series.axes, name)
            check_declared(w, h, c, _tiff_depth(series.dtype), spec, name)  # from the header: nothing decoded yet
            array = series.asarray()
            tag = tf.pages[0].tags.get("Orientation")
            orientation = int(tag.value) if tag is not None else 1
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 -- tifffile raises many kinds
        raise DataError(f"cannot read image {name}: {type(e).__name__}: {e}") from None
    array = array.reshape(dims)
    if squeezed == "YX":
        array = array[..., None]
    elif squeezed.endswith("YX"):
        array = np.moveaxis(array, 0, -1)
    kind = array.dtype
    if kind == np.uint8:
        depth: int | str = 8
    elif kind == np.uint16:
        depth = 16
    elif kind.kind == "f":
        array, depth = array.astype(np.float32), "float"
    elif kind == np.bool_:
        array, depth = array.astype(np.uint8) * 255, 8
    else:
        raise DataError(f"cannot read image {name}: TIFF samples of type {kind}; accepted: 8-bit or 16-bit "
                        f"unsigned integers, or float")
    return orient(array, orientation), depth


# --- fitting a spec -----------------------------------------------------------------------------------

def fit(array: np.ndarray, depth: int | str, spec: ImageSpec, name: str) -> torch.Tensor:
    """Samples of ``depth`` as a float tensor (C, H, W) in [-1, 1] for a domain of ``spec``; the
    lossless conversions (grey into 3 channels, 8 bits into 16 or float, 16 into float) only."""
    c = array.shape[-1]
    what = f"{_describe(c, depth)} ({array.shape[1]}x{array.shape[0]})"
    accepted = _accepted(spec)
    if c != spec.channels and not (c == 1 and spec.channels == 3):
        raise DataError(f"image {name} is {what}, its domain is {spec.describe()}: {accepted}")
    order = {8: 0, 16: 1, "float": 2}
    if order[depth] > order[spec.depth]:
        raise DataError(f"image {name} is {what}, its domain is {spec.describe()}: {accepted}")
    x = torch.from_numpy(np.array(array, dtype=np.float32)).permute(2, 0, 1)
    if depth == "float":
        if not torch.isfinite(x).all():
            raise DataError(f"image {name} holds NaN or infinite samples")
        x = x.clamp_(0, 1)
    else:
        x = x.div_(_MAX[depth])
    if c != spec.channels:
        x = x.expand(spec.channels, -1, -1).contiguous()
    return x.mul_(2).sub_(1)


def _describe(channels: int, depth) -> str:
    kind = {1: "grey", 3: "RGB"}.get(channels, f"{channels}-channel")
    return f"{kind} {depth}-bit" if depth != "float" else f"{kind} float"


def _accepted(spec: ImageSpec) -> str:
    depths = {8: "8-bit", 16: "8- or 16-bit", "float": "8-bit, 16-bit or float"}[spec.depth]
    chans = {1: "grey (1-channel)", 3: "grey or RGB"}.get(spec.channels, f"{spec.channels}-channel")
    return f"accepted: {chans} files of {depths} samples (data.{{a,b}}.channels, .depth set the domain's)"


def decode(data: bytes, name: str, spec: ImageSpec = DEFAULT):
    """An image file's bytes for a domain of ``spec``: for the default spec a PIL 8-bit RGB image
    (today's path, ``decode_rgb``), for any other a float tensor (C, H, W) in [-1, 1]. DataError
    naming ``name`` if it cannot be read or does not fit."""
    if spec.is_default:
        from .images import decode_rgb

        return decode_rgb(data, name, spec)
    array, depth = read_samples(data, name, spec)
    return fit(array, depth, spec, name)


def load(path: str | Path, spec: ImageSpec = DEFAULT):
    """The image file at ``path`` for a domain of ``spec`` (``decode``)."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    return decode(data, str(path), spec)


def as_tensor(image) -> torch.Tensor:
    """``decode``'s result as a float tensor (C, H, W) in [-1, 1]."""
    if isinstance(image, torch.Tensor):
        return image
    from .transforms import to_tensor

    return to_tensor(image)


def load_tensor(path: str | Path, spec: ImageSpec = DEFAULT) -> torch.Tensor:
    return as_tensor(load(path, spec))


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) as the image is shown (EXIF orientation applied), from the header; DataError
    naming the file if it is not an image."""
    path = Path(path)
    try:
        if path.stat().st_size == 0:
            raise DataError(f"cannot read image {path}: the file is empty (0 bytes)")
        with open(path, "rb") as f:
            head = f.read(4)
        if is_tiff(head):
            try:
                import tifffile
            except ImportError:
                pass
            else:
                with tifffile.TiffFile(path) as tf:
                    shape, axes = tf.series[0].shape, tf.series[0].axes
                    return shape[axes.index("X")], shape[axes.index("Y")]
        with Image.open(path) as im:
            w, h = im.size
            return (h, w) if swaps_sides(pil_orientation(im)) else (w, h)
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


# --- writing ------------------------------------------------------------------------------------------

def suffix(spec: ImageSpec) -> str:
    """The file type ``cgx translate`` writes a domain's images as: PNG for grey and RGB of 8 or 16
    bits, TIFF for any other channel count and for float."""
    return ".png" if spec.channels in (1, 3) and spec.depth != "float" else ".tif"


def to_samples(x: torch.Tensor, spec: ImageSpec) -> np.ndarray:
    """A float (C, H, W) image in [-1, 1] as (H, W, C) samples of the spec's depth (uint8, uint16, float32)."""
    y = (x.detach().float().clamp(-1, 1) + 1) / 2
    if spec.depth == "float":
        return y.permute(1, 2, 0).cpu().numpy().astype(np.float32)
    scaled = (y * _MAX[spec.depth]).round().permute(1, 2, 0).cpu().numpy()
    return scaled.astype(np.uint8 if spec.depth == 8 else np.uint16)


def encode(x: torch.Tensor, spec: ImageSpec = DEFAULT) -> bytes:
    """A float (C, H, W) image in [-1, 1] as file bytes of the domain's type (``suffix``) and depth:
    8-bit RGB exactly as ``cgx.data.transforms.to_image`` writes it; 16-bit PNG keeps every value of
    0..65535; TIFF holds any channel count (uint8, uint16 or float32)."""
    if x.shape[0] != spec.channels:
        raise DataError(f"an image of {x.shape[0]} channels cannot be written for a domain of {spec.describe()}")
    buf = io.BytesIO()
    if spec.is_default:
        from .transforms import to_image

        to_image(x).save(buf, format="PNG")
        return buf.getvalue()
    samples = to_samples(x, spec)
    if suffix(spec) == ".tif":
        try:
            import tifffile
        except ImportError:
            raise SetupError(f"writing {spec.describe()} images (TIFF) needs tifffile: {EXTRAS}") from None
        tifffile.imwrite(buf, samples if spec.channels > 1 else samples[..., 0],
                         photometric="minisblack", planarconfig="contig" if spec.channels > 1 else None,
                         compression="zlib" if spec.depth != "float" else None)
        return buf.getvalue()
    if spec.channels == 1:
        Image.fromarray(samples[..., 0]).save(buf, format="PNG")  # uint8: L, uint16: I;16 (16-bit PNG)
        return buf.getvalue()
    if spec.depth == 8:
        Image.fromarray(samples).save(buf, format="PNG")
        return buf.getvalue()
    try:
        import png
    except ImportError:
        raise SetupError(f"writing 16-bit RGB PNG needs pypng (PIL writes 8 bits only): {EXTRAS}") from None
    h, w, c = samples.shape
    png.Writer(w, h, greyscale=False, bitdepth=16).write(buf, samples.reshape(h, w * c))
    return buf.getvalue()


def rgb_view(x: torch.Tensor, bands: list[int] | tuple[int, ...] | None = None) -> torch.Tensor | None:
    """Images (..., C, H, W) as three channels to look at or to score: grey repeated, RGB as is, N
    channels by ``bands`` (three indices, shown as R, G, B); None for N channels without bands."""
    c = x.shape[-3]
    if c == 3:
        return x
    if c == 1:
        return x.expand(*x.shape[:-3], 3, *x.shape[-2:])
    if bands is None:
        return None
    return x[..., list(bands), :, :]


def display_view(x: torch.Tensor, bands: list[int] | tuple[int, ...] | None = None) -> torch.Tensor:
    """Images (..., C, H, W) as three channels to look at (grids, the results page): ``rgb_view``,
    with N channels shown by ``bands`` where given (what evaluation scores), else by their first three."""
    return rgb_view(x, bands if bands is not None else [min(i, x.shape[-3] - 1) for i in range(3)])
