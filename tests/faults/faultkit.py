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
