"""Headless Chromium for the results-page tests: a screenshot of a page, and where an image appears
in it. Debian's ``chromium``; the tests skip without it unless CGX_REQUIRE_CHROMIUM=1 (set by
``.ci/run``, which installs it where it runs as root with apt-get)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

CHROMIUM = next((shutil.which(n) for n in ("chromium", "chromium-browser") if shutil.which(n)), None)
REQUIRED = os.environ.get("CGX_REQUIRE_CHROMIUM") == "1"
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--force-device-scale-factor=1")
"""The background-networking flags matter: without them Chromium waits on a closed network."""


def screenshot(page: Path, out: Path, width: int = 1000, height: int = 1400, timeout: int = 60) -> np.ndarray:
    """``page`` as headless Chromium shows it in a ``width`` x ``height`` window: (H, W, 3) uint8."""
    from PIL import Image

    with tempfile.TemporaryDirectory(prefix="cgx-chromium-") as profile:
        proc = subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", f"--screenshot={out}",
                               f"--window-size={width},{height}", Path(page).resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0 and out.is_file(), proc.stderr[-3000:]
    return np.asarray(Image.open(out).convert("RGB"))


def find(shot: np.ndarray, image: np.ndarray, tol: int = 2) -> list[tuple[int, int]]:
    """Every (y, x) where ``image`` (h, w, 3) appears in ``shot`` pixel for pixel (within ``tol``)."""
    h, w = image.shape[:2]
    H, W = shot.shape[0] - h + 1, shot.shape[1] - w + 1
    if H <= 0 or W <= 0:
        return []
    s, t = shot.astype(np.int16), image.astype(np.int16)
    ys, xs = np.nonzero((np.abs(s[:H, :W] - t[0, 0]) <= tol).all(-1))  # where the first pixel fits
    rng = np.random.default_rng(0)
    for dy, dx in zip(rng.integers(0, h, 32), rng.integers(0, w, 32)):  # then a few more, at those places only
        keep = (np.abs(s[ys + dy, xs + dx] - t[dy, dx]) <= tol).all(-1)
        ys, xs = ys[keep], xs[keep]
    return [(int(y), int(x)) for y, x in zip(ys, xs) if (np.abs(s[y:y + h, x:x + w] - t) <= tol).all()]
