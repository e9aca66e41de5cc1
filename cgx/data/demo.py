"""The built-in demo data: two visually distinct synthetic domains, generated locally.

Domain A ("dusk"): warm red/orange/yellow shapes on dark blue backgrounds.
Domain B ("paper"): cool teal/blue/green shapes on light cream backgrounds.
Scenes are drawn independently per domain (unpaired); a CycleGAN learns the palette mapping
(dark background <-> light, warm shapes <-> cool) in a few CPU minutes at 64 px.

Either domain can be made grey, 16-bit, float or multi-band (``cgx demo-data --channels 1 --depth 16``,
``--channels 8``): the scene is rendered in float, then written as the domain's spec says
(``cgx.data.decode.encode``: 16-bit PNG for grey/RGB, TIFF for N bands or float). A grey domain is the
scene's luminance with a faint texture below one 8-bit step (so a 16-bit domain really uses 16 bits);
band k of an N-band domain is a fixed mix of the scene's R, G, B, as a multispectral sensor's bands.

With labels (``cgx demo-data --labels``) every image gets its class map beside it (``trainA_labels/`` ...): the
shapes are the classes (1 ellipse, 2 rectangle, 3 triangle; 0 background), so an FCN score (``cgx eval --labels``)
can say whether a translation kept them.
"""
from __future__ import annotations

import colorsys
import random
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFilter

from ..config import ImageSpec

PALETTES = {
    # (hue range of shapes, background hue, background lightness range)
    "A": ((0.0, 0.14), 0.62, (0.08, 0.22)),
    "B": ((0.42, 0.62), 0.11, (0.82, 0.93)),
}


def _rgb(h: float, l: float, s: float) -> tuple[int, int, int]:
    r, g, b = colorsys.hls_to_rgb(h % 1.0, l, s)
    return int(r * 255), int(g * 255), int(b * 255)


SHAPES = ("ellipse", "rect", "triangle")
LABEL_CLASSES = ("background", *SHAPES)
"""The classes of the demo's label maps (``cgx demo-data --labels``): class k is LABEL_CLASSES[k]; the recipe
says ``data.a.labels: {classes: 4}``."""


def render(domain: str, rng: random.Random, size: int = 64, labels: bool = False):
    """One scene of ``domain``; with ``labels`` (image, label map): the label map is the same shapes drawn with
    their class (``LABEL_CLASSES``) on background 0, hard-edged (the image is smoothed after drawing). The
    random draws are the same either way, so the image is the same."""
    (h0, h1), bg_hue, (l0, l1) = PALETTES[domain]
    top, bottom = rng.uniform(l0, l1), rng.uniform(l0, l1)
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    label = Image.new("L", (size, size), 0)
    ink = ImageDraw.Draw(label)
    for y in range(size):  # vertical background gradient
        draw.line([(0, y), (size, y)], fill=_rgb(bg_hue, top + (bottom - top) * y / size, 0.45))
    for _ in range(rng.randint(2, 5)):
        color = _rgb(rng.uniform(h0, h1), rng.uniform(0.45, 0.6), rng.uniform(0.75, 1.0))
        r = rng.uniform(0.1, 0.25) * size
        cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
        box = [cx - r, cy - r, cx + r, cy + r]
        shape = rng.choice(SHAPES)
        k = LABEL_CLASSES.index(shape)
        for d, fill in ((draw, color), (ink, k)):
            if shape == "ellipse":
                d.ellipse(box, fill=fill)
            elif shape == "rect":
                d.rectangle(box, fill=fill)
            else:
                d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    img = img.filter(ImageFilter.SMOOTH)
    return (img, label) if labels else img


def as_spec(image: Image.Image, spec: ImageSpec, rng: random.Random) -> torch.Tensor:
    """A rendered RGB scene as a float (C, H, W) image in [-1, 1] of ``spec``'s channels."""
    rgb = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)
    if spec.channels == 3:
        x = rgb
    elif spec.channels == 1:
        h, w = rgb.shape[-2:]
        yy, xx = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
        texture = 0.0015 * torch.sin(xx * 0.7 + rng.uniform(0, 6.28)) * torch.cos(yy * 0.45)  # below 1/255
        x = (0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2] + texture).unsqueeze(0)
    else:
        mix = torch.Generator().manual_seed(1234)  # the same bands for every image of the set
        weights = torch.rand(spec.channels, 3, generator=mix)
        weights = weights / weights.sum(1, keepdim=True)
        x = torch.einsum("kc,chw->khw", weights, rgb)
    return (x.clamp(0, 1) * 2 - 1).contiguous()


def generate(out: str | Path, n_train: int = 200, n_test: int = 8, size: int = 64, seed: int = 0,
             a: ImageSpec | None = None, b: ImageSpec | None = None, labels: bool = False) -> Path:
    """Write ``trainA/ trainB/ testA/ testB/`` under ``out``; skips files that already exist. ``a``, ``b``:
    the domains' image specs (default 8-bit RGB PNG, the original demo set bit for bit). ``labels``: also each
    image's label map (the shapes are the classes, ``LABEL_CLASSES``) in ``trainA_labels/`` ... ``testB_labels/``
    (the same file name, .png: 8-bit class indices); the images are the same as without."""
    from .decode import encode, suffix
    from .label_maps import labels_folder

    out = Path(out)
    specs = {"A": a or ImageSpec(), "B": b or ImageSpec()}
    for split, n in (("train", n_train), ("test", n_test)):
        for domain in ("A", "B"):
            folder = out / f"{split}{domain}"
            folder.mkdir(parents=True, exist_ok=True)
            if labels:
                labels_folder(folder).mkdir(exist_ok=True)
            spec = specs[domain]
            for i in range(n):
                path = folder / f"{domain.lower()}_{i:05d}{suffix(spec)}"
                label = labels_folder(folder) / f"{path.stem}.png" if labels else None
                if path.exists() and (label is None or label.exists()):
                    continue
                rng = random.Random(f"{seed}-{split}-{domain}-{i}")
                scene, classes = render(domain, rng, size, labels=True)
                if label is not None and not label.exists():
                    tmp = label.with_name(f".{label.name}.tmp")
                    classes.save(tmp, format="PNG")
                    tmp.replace(label)
                if path.exists():
                    continue
                tmp = path.with_name(f".{path.name}.tmp")
                if spec.is_default:
                    scene.save(tmp, format="PNG")
                else:
                    tmp.write_bytes(encode(as_spec(scene, spec, rng), spec))
                tmp.replace(path)
    return out


# --- paired demo data (cgx demo-data --paired) -------------------------------------------------------

def draw_layout(rng: random.Random) -> dict:
    """One scene's layout as unit draws: the same layout renders in either domain's palette."""
    shapes = [{"hue": rng.random(), "light": rng.uniform(0.45, 0.6), "sat": rng.uniform(0.75, 1.0),
               "r": rng.uniform(0.1, 0.25), "x": rng.random(), "y": rng.random(),
               "kind": rng.choice(("ellipse", "rect", "triangle"))} for _ in range(rng.randint(2, 5))]
    return {"top": rng.random(), "bottom": rng.random(), "shapes": shapes}


def render_layout(domain: str, layout: dict, size: int = 64) -> Image.Image:
    """``layout`` drawn in ``domain``'s palette (the A scene and its B rendering share every shape)."""
    (h0, h1), bg_hue, (l0, l1) = PALETTES[domain]
    top, bottom = l0 + (l1 - l0) * layout["top"], l0 + (l1 - l0) * layout["bottom"]
    img = Image.new("RGB", (size, size))
    draw = ImageDraw.Draw(img)
    for y in range(size):
        draw.line([(0, y), (size, y)], fill=_rgb(bg_hue, top + (bottom - top) * y / size, 0.45))
    for s in layout["shapes"]:
        color = _rgb(h0 + (h1 - h0) * s["hue"], s["light"], s["sat"])
        r = s["r"] * size
        cx, cy = r + (size - 2 * r) * s["x"], r + (size - 2 * r) * s["y"]
        box = [cx - r, cy - r, cx + r, cy + r]
        if s["kind"] == "ellipse":
            draw.ellipse(box, fill=color)
        elif s["kind"] == "rect":
            draw.rectangle(box, fill=color)
        else:
            draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    return img.filter(ImageFilter.SMOOTH)


def generate_paired(out: str | Path, n_train: int = 200, n_test: int = 8, size: int = 64, seed: int = 0,
                    n_val: int = 0) -> Path:
    """Write the aligned layout under ``out``: ``train/ test/`` (and ``val/``) of 2*size x size PNGs, each the
    A scene (left) beside its B rendering (right): the same shapes in the other domain's palette. Skips
    files that already exist."""
    out = Path(out)
    for split, n in (("train", n_train), ("val", n_val), ("test", n_test)):
        if n <= 0:
            continue
        folder = out / split
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            path = folder / f"{i:05d}.png"
            if path.exists():
                continue
            layout = draw_layout(random.Random(f"{seed}-paired-{split}-{i}"))
            sheet = Image.new("RGB", (2 * size, size))
            sheet.paste(render_layout("A", layout, size), (0, 0))
            sheet.paste(render_layout("B", layout, size), (size, 0))
            tmp = path.with_name(f".{path.name}.tmp")
            sheet.save(tmp, format="PNG")
            tmp.replace(path)
    return out
