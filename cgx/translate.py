"""``cgx translate``: a folder of images through one trained generator, batched, any image size.

A user's images are never touched: the output folder may not be the input folder or inside it,
existing files are never replaced without ``overwrite``, and each output is written under a
temporary name and renamed into place once complete.

Output names: ``IN/sub/x.jpg`` -> ``OUT/sub/x.png``. When several inputs of one folder share a
name up to the extension (``x.jpg`` and ``x.png``), each of them keeps its extension in the name
instead (``x_jpg.png``, ``x_png.png``), so every input gets its own output. An image that cannot
be read (empty, truncated) is skipped with a warning naming it, and reported; only images
actually written are counted.

With ``tile`` (``--tile``), each image is translated alone, in tiles, by ``cgx.tiling``: the same result
as untiled (instance norm statistics of the whole image, halos as wide as the receptive field) in memory
bounded by the tile size and the generator's feature maps between its stages."""
from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .data.images import list_images, load_rgb
from .data.transforms import to_image, to_tensor
from .errors import DataError, UsageError
from .infer import autocast, load_generators, pad_for, resolve_device, translate_batch
from .interop.sources import is_authors_folder
from .train.checkpoint import resolve as resolve_checkpoint

log = logging.getLogger("cgx.translate")


@dataclass
class Translated:
    """What a ``translate_folder`` call did: the files it wrote, and the inputs it skipped (path, why)."""

    written: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def output_names(src: Path, files: list[Path]) -> dict[Path, Path]:
    """input -> output path relative to the output folder (see the module's docstring)."""
    stems: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for f in files:
        rel = f.relative_to(src)
        stems[(rel.parent, rel.stem.casefold())].append(f)
    out, taken = {}, {}
    for f in files:
        rel = f.relative_to(src)
        if len(stems[(rel.parent, rel.stem.casefold())]) > 1:
            rel = rel.with_name(f"{rel.stem}_{rel.suffix.lstrip('.')}.png")
        else:
            rel = rel.with_suffix(".png")
        key = rel.as_posix().casefold()  # two names that differ in case only collide on some file systems
        if key in taken:
            raise DataError(f"{taken[key]} and {f} would both be written to {rel}; rename one of them")
        taken[key] = f
        out[f] = rel
    return out


def check_folders(src: Path, out: Path) -> None:
    """The output folder may be neither the input folder nor inside it (nor a file)."""
    s, o = src.resolve(), out.resolve()
    if o == s or s in o.parents:
        raise DataError(f"output folder {out} is {'the input folder' if o == s else f'inside the input folder {src}'}: "
                        f"choose a folder outside it, so that no source image can be replaced")
    if o.exists() and not o.is_dir():
        raise DataError(f"output {out} exists and is not a folder")


def save_atomic(image: Image.Image, target: Path, overwrite: bool) -> None:
    """Write ``target`` as PNG under a temporary name, then rename it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if target.exists() and not overwrite:
        raise DataError(f"{target} exists (written meanwhile by something else?); pass --overwrite to replace it")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        image.save(tmp, format="PNG")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def translate_folder(checkpoint: str | Path, src: str | Path, out: str | Path, *, direction: str = "AtoB",
                     batch_size: int = 8, device: str = "auto", precision: str = "auto", overwrite: bool = False,
                     progress: bool = True, tile: int | None = None, overlap: int | None = None) -> Translated:
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
    if not (Path(checkpoint).is_file() or is_authors_folder(Path(checkpoint))):
        resolve_checkpoint(checkpoint)  # a missing checkpoint is named before the images are looked at
    files = list_images(src)
    names = output_names(src, files)
    if not overwrite:
        existing = [out / names[f] for f in files if (out / names[f]).exists()]
        if existing:
            shown = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
            raise DataError(f"{out} already holds {len(existing)} of the {len(files)} output files ({shown}); "
                            f"pass --overwrite to replace them, or choose another output folder")
    gens = load_generators(checkpoint, dev)
    net = gens.net(direction)
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
    for group in by_size.values():
        for i in range(0, len(group), batch_size):
            chunk, images = [], []
            for f in group[i: i + batch_size]:
                try:
                    images.append(to_tensor(load_rgb(f)))
                    chunk.append(f)
                except DataError as e:
                    skip(result, f, str(e))
            if chunk:
                x = (torch.stack(images) if len(images) > 1 else images[0][None]).to(dev)  # no copy of a lone image
                with autocast(dev, precision):
                    y = translate_batch(net, x) if tiles is None else _tiled(tiles, net, x, tile, overlap, progress)
                for f, img in zip(chunk, y):
                    target = out / names[f]
                    save_atomic(to_image(img), target, overwrite)
                    result.written.append(target)
            bar.update(len(group[i: i + batch_size]))
    bar.close()
    if not result.written:
        raise DataError(f"none of the {len(files)} images under {src} could be read ({result.skipped[0][1]})")
    return result


def _tiled(tiles, net, x: torch.Tensor, tile: int, overlap: int | None, progress: bool) -> torch.Tensor:
    from .tiling import translate_tiled

    h, w = x.shape[-2:]
    return translate_tiled(tiles, pad_for(net, x), tile, overlap, progress)[..., :h, :w]


def image_size(path: Path) -> tuple[int, int]:
    """(width, height) from the header; DataError naming the file if it is not an image."""
    try:
        if path.stat().st_size == 0:
            raise DataError(f"cannot read image {path}: the file is empty (0 bytes)")
        with Image.open(path) as im:
            return im.size
    except DataError:
        raise
    except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
        raise DataError(f"cannot read image {path}: {type(e).__name__}: {e}") from None


def skip(result: Translated, path: Path, error: str) -> None:
    """Record an unreadable input (``error`` names it) and warn."""
    log.warning("cgx: warning: skipped: %s", error)
    result.skipped.append((path, error))
