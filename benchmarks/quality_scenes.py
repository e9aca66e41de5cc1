"""The ground-truth benchmark's synthetic task family: scenes drawn in two domains, deterministically.

A scene is a background texture (stripes of a random orientation, frequency and phase) and 2 to 5
objects of five classes (disc, square, triangle, ring, cross), each with a position, a size and (for
square and cross) a rotation, drawn over one another in order. Everything of the B rendering can be
read off the A drawing and the other way round, so each translation has one right answer:

- domain A, a schematic: a light background crossed by thin lines along the stripes, each object a
  flat colour of its class;
- domain B, a rendering: wood-like bands along the same stripes, each object textured by its class:
  a shaded sphere (disc), a 3 x 3 checkerboard turned with the square, horizontal bands (triangle), a
  radial gradient (ring), a grid of dots turned with the cross.

A translation that moves, bends or drops an object, swaps a class's texture or turns a checkerboard
is visibly wrong, and the pixel scores (L1, PSNR, SSIM) against the hidden truth say so.

Splits (``write_splits``): ``trainA/`` and ``trainB/`` are drawn from disjoint scene streams (no A
image has its B counterpart in the training data: unpaired); ``test/`` holds aligned pairs (the A
drawing left, the B rendering of the same scene right), the layout of ``cgx eval --pairs``. The
same arguments give the same bytes (``random.Random`` seeded by text; numpy only for arithmetic).
Images are drawn at twice the size and averaged down 2 x 2 (anti-aliased edges).
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("disc", "square", "triangle", "ring", "cross")
COLOURS_A = {"disc": (220, 60, 60), "square": (60, 90, 220), "triangle": (50, 170, 80), "ring": (240, 160, 40),
             "cross": (150, 70, 200)}
LIGHT = np.array([-0.5, -0.55, 0.67]) / np.linalg.norm([-0.5, -0.55, 0.67])


@dataclass(frozen=True)
class Thing:
    kind: str
    x: float  # centre, in [0, 1] of the image
    y: float
    r: float  # radius, in [0, 1] of the image
    angle: float  # radians


@dataclass(frozen=True)
class Scene:
    stripe_angle: float
    stripe_freq: float  # periods across the image
    stripe_phase: float
    things: tuple[Thing, ...]


def draw_scene(rng: random.Random) -> Scene:
    things = []
    for _ in range(rng.randint(2, 5)):
        kind = rng.choice(CLASSES)
        things.append(Thing(kind, rng.uniform(0.18, 0.82), rng.uniform(0.18, 0.82), rng.uniform(0.11, 0.2),
                            rng.uniform(0, math.pi / 2) if kind in ("square", "cross") else 0.0))
    return Scene(rng.uniform(0, math.pi), rng.uniform(2.0, 5.0), rng.uniform(0, 2 * math.pi), tuple(things))


def scene_of(key: str) -> Scene:
    """The scene named ``key`` (the same scene for the same text, on any machine)."""
    return draw_scene(random.Random(key))


def _grid(n: int) -> tuple[np.ndarray, np.ndarray]:
    c = (np.arange(n) + 0.5) / n
    return np.meshgrid(c, c)  # x varies along columns, y along rows


def _frame(t: Thing, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates in the thing's own frame: centred, unrotated, in units of its radius."""
    dx, dy = (x - t.x) / t.r, (y - t.y) / t.r
    c, s = math.cos(t.angle), math.sin(t.angle)
    return c * dx + s * dy, -s * dx + c * dy


def _mask(t: Thing, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    if t.kind == "disc":
        return u * u + v * v <= 1.0
    if t.kind == "square":
        return np.maximum(abs(u), abs(v)) <= 0.8
    if t.kind == "triangle":  # apex up, base down
        return (v <= 0.75) & (v >= -0.95) & (abs(u) <= 0.95 * (v + 0.95) / 1.7)
    if t.kind == "ring":
        r2 = u * u + v * v
        return (r2 <= 1.0) & (r2 >= 0.3)
    return ((abs(u) <= 0.3) & (abs(v) <= 0.95)) | ((abs(v) <= 0.3) & (abs(u) <= 0.95))  # cross


def _stripes(scene: Scene, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    along = math.cos(scene.stripe_angle) * x + math.sin(scene.stripe_angle) * y
    return 2 * math.pi * scene.stripe_freq * along + scene.stripe_phase


def _mix(a, b, w: np.ndarray) -> np.ndarray:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a + (b - a) * w[..., None]


def _texture_b(t: Thing, u: np.ndarray, v: np.ndarray, y: np.ndarray) -> np.ndarray:
    if t.kind == "disc":
        w = np.sqrt(np.clip(1 - u * u - v * v, 0, 1))
        shade = np.clip(u * LIGHT[0] + v * LIGHT[1] + w * LIGHT[2], 0, 1)
        return _mix((40, 40, 10), (250, 235, 90), 0.15 + 0.85 * shade)
    if t.kind == "square":
        cells = (np.floor((u + 0.8) / (1.6 / 3)) + np.floor((v + 0.8) / (1.6 / 3))) % 2
        return _mix((25, 35, 90), (235, 235, 225), cells)
    if t.kind == "triangle":
        return _mix((10, 90, 100), (120, 220, 210), (np.sin(2 * math.pi * 12 * y) > 0).astype(np.float64))
    if t.kind == "ring":
        r = np.sqrt(u * u + v * v)
        return _mix((120, 0, 90), (255, 170, 220), np.clip((r - 0.55) / 0.45, 0, 1))
    dots = ((np.mod(u + 0.15, 0.3) - 0.15) ** 2 + (np.mod(v + 0.15, 0.3) - 0.15) ** 2) <= 0.08 ** 2  # cross
    return _mix((170, 230, 150), (20, 80, 20), dots.astype(np.float64))


def render(scene: Scene, domain: str, size: int) -> np.ndarray:
    """The scene in domain ``A`` or ``B``: (size, size, 3) uint8."""
    n = 2 * size
    x, y = _grid(n)
    phase = _stripes(scene, x, y)
    if domain == "A":
        lines = (np.cos(phase) > 0.93).astype(np.float64)
        image = _mix((228, 228, 222), (170, 170, 190), lines)
    else:
        bands = 0.5 + 0.35 * np.sin(phase) + 0.15 * np.sin(2 * phase + 1.0)
        image = _mix((95, 55, 25), (200, 150, 95), bands)
    for t in scene.things:
        u, v = _frame(t, x, y)
        inside = _mask(t, u, v)
        colour = np.broadcast_to(np.asarray(COLOURS_A[t.kind], np.float64), image.shape) if domain == "A" \
            else _texture_b(t, u, v, y)
        image = np.where(inside[..., None], colour, image)
    image = image.reshape(size, 2, size, 2, 3).mean(axis=(1, 3))
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


def _save(array: np.ndarray, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    Image.fromarray(array).save(tmp, format="PNG")
    tmp.replace(path)


def write_splits(out: str | Path, *, n_train: int, n_test: int, size: int, seed: int = 0) -> Path:
    """``out/trainA``, ``out/trainB`` (unpaired: disjoint scene streams) and ``out/test`` (aligned A | B
    pairs); files that exist already are kept (the same arguments write the same bytes)."""
    out = Path(out)
    for split, n in (("trainA", n_train), ("trainB", n_train), ("test", n_test)):
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            path = folder / f"{i:05d}.png"
            if path.exists():
                continue
            scene = scene_of(f"cgx-quality-{seed}-{split}-{i}")
            if split == "test":
                _save(np.concatenate([render(scene, "A", size), render(scene, "B", size)], axis=1), path)
            else:
                _save(render(scene, split[-1], size), path)
    return out
