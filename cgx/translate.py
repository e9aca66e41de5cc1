"""``cgx translate``: a folder of images through one trained generator, batched, any image size.

A user's images are never touched: the output folder may not be the input folder or inside it,
existing files are never replaced without ``overwrite``, and each output is written under a
temporary name and renamed into place once complete.

Each output is written in its domain's format and depth (``data.b`` for AtoB, ``data.a`` for BtoA;
``cgx.data.decode.encode``): PNG for 8-bit grey or RGB (as always), 16-bit PNG for 16-bit grey or
RGB (every value of 0..65535 kept), TIFF for other channel counts and float. Inputs are read as
their domain's spec says, turned upright by their EXIF orientation (the output has none).

Output names: ``IN/sub/x.jpg`` -> ``OUT/sub/x.png`` (``x.tif`` for a TIFF domain). When several inputs of one folder share a
name up to the extension (``x.jpg`` and ``x.png``), each of them keeps its extension in the name
instead (``x_jpg.png``, ``x_png.png``), so every input gets its own output. An image that cannot
be read (empty, truncated) is skipped with a warning naming it, and reported; only images
actually written are counted.

With ``tile`` (``--tile``), each image is translated alone, in tiles, by ``cgx.tiling``: the same result
as untiled (instance norm statistics of the whole image, halos as wide as the receptive field) in memory
bounded by the tile size and the generator's feature maps between its stages."""
from __future__ import annotations

import contextlib
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image
from tqdm import tqdm

from .data.decode import encode, load_tensor, suffix
from .data.decode import image_size as oriented_size
from .data.images import list_images
from .errors import DataError, UsageError
from .infer import load_generators, pad_for, resolve_device, translate_batch
from .precision import autocast
from .outputs import check_apart, check_targets
from .safe_text import shown

log = logging.getLogger("cgx.translate")


@dataclass
class Translated:
    """What a ``translate_folder`` call did: the files it wrote, and the inputs it skipped (path, why)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def output_names(src: Path, files: list[Path], ext: str = ".png") -> dict[Path, Path]:
    """input -> output path relative to the output folder (see the module's docstring)."""
    stems: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for f in files:
        rel = f.relative_to(src)
        stems[(rel.parent, rel.stem.casefold())].append(f)
    out, taken = {}, {}
    for f in files:
        rel = f.relative_to(src)
        if len(stems[(rel.parent, rel.stem.casefold())]) > 1:
            rel = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}{ext}")
        else:
            rel = rel.with_suffix(ext)
        key = rel.as_posix().casefold()  # two names that differ in case only collide on some file systems
        if key in taken:
            raise DataError(f"{taken[key]} and {f} would both be written to {rel}; rename one of them")
        taken[key] = f
        out[f] = rel
    return out


def check_folders(src: Path, out: Path) -> None:
    """The output folder may be neither the input folder, nor inside it, nor contain it (nor be a file)."""
    check_apart(out, src)
    if out.exists() and not out.is_dir():
        raise DataError(f"output {out} exists and is not a folder")


def save_atomic(image: Image.Image | bytes, target: Path, overwrite: bool) -> None:
    """Write ``target`` (a PIL image as PNG, or encoded bytes) under a temporary name, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise DataError(f"{target} exists (written meanwhile by something else?); pass --overwrite to replace it")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        if isinstance(image, bytes):
            tmp.write_bytes(image)
        else:
            image.save(tmp, format="PNG")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def translate_folder(checkpoint: str | Path, src: str | Path, out: str | Path, *, direction: str = "AtoB",
                     batch_size: int = 8, device: str = "auto", precision: str = "auto", overwrite: bool = False,
                     progress: bool = True, plugins: Sequence[str] = (), weights: str = "auto",
                     tile: int | None = None, overlap: int | None = None) -> Translated:
    """Translate every image under ``src`` into ``out`` (same relative paths, as PNG).

    Images are batched with others of the same size, so any mix of sizes works; with ``tile`` one at
    a time, in tiles of ``tile`` pixels read with ``overlap`` pixels around them (default: what the
    generator needs)."""
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1, got {batch_size}")
    if overlap is not None and tile is None:
        raise UsageError("--overlap needs --tile (it is the margin each tile reads around itself)")
    if overlap is not None and overlap < 0:
        raise UsageError(f"--overlap must be 0 or more, got {overlap}")
    src, out = Path(src), Path(out)
    check_folders(src, out)
    dev = resolve_device(device)
    gens = load_generators(checkpoint, dev, plugins=plugins, weights=weights)  # named before the images
    files = list_images(src)
    net = gens.net(direction)
    spec_in, spec_out = (gens.config.data.a, gens.config.data.b)[:: 1 if direction == "AtoB" else -1]
    names = output_names(src, files, suffix(spec_out))
    check_targets([out / names[f] for f in files], inputs=files, input_folders=[src], overwrite=overwrite)
    tiles = None
    if tile is not None:
        from .tiling import check_tile, plan

        tiles = plan(net, f"{gens.config.model.generator.name!r} ({type(net).__name__})")
        check_tile(tiles, tile, overlap)
        batch_size = 1
    result = Translated()
    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for f in files:
        try:
            by_size[image_size(f)].append(f)
        except DataError as e:
            skip(result, f, str(e))
    bar = tqdm(total=len(files), unit="img", desc=f"translate {direction}", disable=not progress)
    bar.update(len(result.skipped))
    for (w, h), group in by_size.items():
        per_batch = images_per_batch(w, h, batch_size)
        for i in range(0, len(group), per_batch):
            chunk, images = [], []
            for f in group[i: i + per_batch]:
                try:
                    images.append(load_tensor(f, spec_in))
                    chunk.append(f)
                except DataError as e:
                    skip(result, f, str(e))
            if chunk:
                x = (torch.stack(images) if len(images) > 1 else images[0][None]).to(dev)  # no copy of a lone image
                with autocast(precision, dev), out_of_memory_named(w, h, len(chunk), dev):
                    y = translate_batch(net, x) if tiles is None else _tiled(tiles, net, x, tile, overlap, progress)
                for f, img in zip(chunk, y):
                    target = out / names[f]
                    save_atomic(encode(img, spec_out), target, overwrite)
                    result.written.append(target)
            bar.update(len(group[i: i + per_batch]))
    bar.close()
    if not result.written:
        raise DataError(f"none of the {len(files)} images under {src} could be read ({result.skipped[0][1]})")
    return result


BATCH_PIXELS = 8 * 512 * 512
"""Pixels per forward pass at most: --batch-size images of 512 x 512, one 12-MP photo at a time (a
ResNet generator needs about 5 KB of activations per pixel, so a batch of 8 such photos ~60 GB)."""


def images_per_batch(width: int, height: int, batch_size: int) -> int:
    """How many ``width`` x ``height`` images go through the network at once: ``batch_size`` at most,
    fewer so that a batch holds at most BATCH_PIXELS pixels (and at least one image)."""
    return max(1, min(batch_size, BATCH_PIXELS // max(1, width * height)))


def _tiled(tiles, net, x: torch.Tensor, tile: int, overlap: int | None, progress: bool) -> torch.Tensor:
    from .tiling import translate_tiled

    h, w = x.shape[-2:]
    return translate_tiled(tiles, pad_for(net, x), tile, overlap, progress)[..., :h, :w]


@contextlib.contextmanager
def out_of_memory_named(width: int, height: int, n: int, device: torch.device):
    """An allocation failure as one line saying what to lower, not the allocator's traceback."""
    try:
        yield
    except (torch.OutOfMemoryError, RuntimeError) as e:
        text = str(e)
        if not isinstance(e, torch.OutOfMemoryError) and "can't allocate memory" not in text \
                and "out of memory" not in text.lower():
            raise
        raise UsageError(f"out of memory translating {n} image(s) of {width}x{height} at once on {device}: "
                         f"lower --batch-size (1 translates one image at a time), resize the images, or use "
                         f"another --device") from None


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) as shown (EXIF orientation applied) from the header; DataError naming the file
    if it is not an image (``cgx.data.decode.image_size``)."""
    return oriented_size(path)


def skip(result: Translated, path: Path, error: str) -> None:
    """Record an unreadable input (``error`` names it) and warn."""
    log.warning("cgx: warning: skipped: %s", shown(error))
    result.skipped.append((path, error))
