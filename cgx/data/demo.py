"""The built-in demo data: two visually distinct synthetic domains, generated locally.

Domain A ("dusk"): warm red/orange/yellow shapes on dark blue backgrounds.
Domain B ("paper"): cool teal/blue/green shapes on light cream backgrounds.
Scenes are drawn independently per domain (unpaired); a CycleGAN learns the palette mapping
(dark background <-> light, warm shapes <-> cool) in a few CPU minutes at 64 px.
"""
from __future__ import annotations

import colorsys
import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

PALETTES = {
    # (hue range of shapes, background hue, background lightness range)
    "A": ((0.0, 0.14), 0.62, (0.08, 0.22)),
    "B": ((0.42, 0.62), 0.11, (0.82, 0.93)),
}


def _rgb(h: float, l: float, s: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, l, s)
    return int(r * 255), int(g * 255), int(b * 255)


def render(domain: str, rng: random.Random, size: int = 64) -> Image.Image:
    (h0, h1), bg_hue, (l0, l1) = PALETTES[domain]
    top, bottom = rng.uniform(l0, l1), rng.uniform(l0, l1)
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    for y in range(size):  # vertical background gradient
        draw.line([(0, y), (size, y)], fill=_rgb(bg_hue, top + (bottom - top) * y / size, 0.45))
    for _ in range(rng.randint(2, 5)):
        color = _rgb(rng.uniform(h0, h1), rng.uniform(0.45, 0.6), rng.uniform(0.75, 1.0))
        r = rng.uniform(0.1, 0.25) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        box = [cx - r, cy - r, cx + r, cy + r]
        shape = rng.choice(("ellipse", "rect", "triangle"))
        if shape == "ellipse":
            draw.ellipse(box, fill=color)
        elif shape == "rect":
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    return img.filter(ImageFilter.SMOOTH)


def generate(out: str | Path, n_train: int = 200, n_test: int = 8, size: int = 64, seed: int = 0) -> Path:
    """Write ``trainA/ trainB/ testA/ testB/`` under ``out``; skips files that already exist."""
    out = Path(out)
    for split, n in (("train", n_train), ("test", n_test)):
        for domain in ("A", "B"):
            folder = out / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                path = folder / f"{domain.lower()}_{i:05d}.png"
                if path.exists():
                    continue
                rng = random.Random(f"{seed}-{split}-{domain}-{i}")
                tmp = path.with_suffix(".tmp.png")
                render(domain, rng, size).save(tmp)
                tmp.replace(path)
    return out
