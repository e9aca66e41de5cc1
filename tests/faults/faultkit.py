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
