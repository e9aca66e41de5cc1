"""Helpers of the fault tests (tests/faults): images the tests write."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def gradient16(w: int = 40, h: int = 34) -> np.ndarray:
    """A 16-bit grey ramp over the whole range 0..65535."""
    return np.linspace(0, 65535, w * h).round().astype(np.uint16).reshape(h, w)


def save16(path: Path, w: int = 40, h: int = 34) -> np.ndarray:
    """Write a 16-bit grey PNG; return the 8-bit values it must become."""
    wide = gradient16(w, h)
    Image.fromarray(wide).save(path)
    return ((wide.astype(np.int64) * 255 + 32767) // 65535).astype(np.uint8)


def write_noise(path: Path, seed: int, size=(20, 16), fmt=None) -> bytes:
    """A random RGB image (``size`` = width, height) at ``path``; its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(
        path, format=fmt)
    return path.read_bytes()


def one_line_error(capsys, *words) -> str:
    """The command's error: one line, ``cgx: error: ...``, no traceback, holding every one of ``words``."""
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgx: error: ") and "\n" not in err and "Traceback" not in err, err
    for w in words:
        assert w in err, err
    return err


def zlib_zeros(n: int) -> bytes:
    """A zlib stream of ``n`` zero bytes, about n/1000 long, made in milliseconds: deflate segments of 8 MiB
    of zeros after full flushes are identical, so one is made and repeated."""
    import zlib

    piece = 8 << 20
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    segment = c.compress(bytes(piece)) + c.flush(zlib.Z_FULL_FLUSH)
    full, rest = divmod(n, piece)
    tail = zlib.compressobj(9, zlib.DEFLATED, -15)
    body = segment * full + tail.compress(bytes(rest)) + tail.flush(zlib.Z_FINISH)
    adler = ((n % 65521) << 16) | 1  # Adler-32 of n zeros: a stays 1, b adds 1 a byte
    return b"\x78\xda" + body + adler.to_bytes(4, "big")


def png_of_zeros(path: Path, width: int, height: int, channels: int = 1, depth: int = 8) -> int:
    """A black PNG declaring ``width`` x ``height`` (grey or RGB, 8 or 16 bits) in a few hundred KB, whatever
    its size; the bytes it unpacks to."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = height * (1 + width * channels * depth // 8)  # a filter byte (0: none) and the samples, each row
    header = struct.pack(">IIBBBBB", width, height, depth, {1: 0, 3: 2}[channels], 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib_zeros(raw))
                     + chunk(b"IEND", b""))
    return raw


def tiled_tiff_of_nothing(path: Path, shape: tuple[int, ...], tile: int = 256) -> None:
    """A tiled TIFF declaring ``shape`` (bands first for more than one: planar) of uint8 whose tiles are all
    empty but the first: a few hundred KB of tile tables, however large it declares itself."""
    import tifffile

    def tiles():
        yield np.zeros((tile, tile), np.uint8)
        while True:
            yield None  # an empty tile: offset and byte count 0, nothing written

    tifffile.imwrite(path, tiles(), shape=shape, dtype="uint8", tile=(tile, tile), photometric="minisblack",
                     planarconfig="separate" if len(shape) == 3 else None)
