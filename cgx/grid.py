"""``cgx grid``: a PNG of input | translated | reconstructed, for A->B->A and B->A->B; for a method that
learns one direction (CUT), input | translated for that direction alone."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import torch
from PIL import Image, ImageDraw

from .data.decode import display_view, load_tensor
from .data.transforms import resize
from .data.images import list_images, load_rgb
from .data.transforms import to_image, to_tensor
from .errors import UsageError
from .infer import load_generators, translate_batch
from .outputs import check_targets


FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}
CYCLE_COLUMNS = ("input", "translated", "reconstructed")
"""A row's images of an unpaired run: a method without a reverse network (CUT) has the first two."""
PAIRED_COLUMNS = ("input", "translated", "ground truth")


def row_label(direction: str, back: bool) -> str:
    """``A -> B``, or ``A -> B -> A`` where a reverse network translates back."""
    label = f"{direction[0]} -> {direction[-1]}"
    return label + f" -> {direction[0]}" if back else label


def shown_image(x: torch.Tensor, bands=None) -> Image.Image:
    """One image (C, H, W) in [-1, 1] as the 8-bit RGB a grid or the results page shows (grey
    repeated; N bands by ``bands``, else their first three; rounded as a saved PNG is)."""
    return to_image(display_view(x, bands))


def cycle_grid(checkpoint: str | Path, dir_a: str | Path, dir_b: str | Path, out: str | Path, *,
               n: int = 6, size: int | None = None, device: str = "cpu", overwrite: bool = False,
               plugins: Sequence[str] = (), weights: str = "auto") -> Path:
    """Rows of (input, translated, reconstructed): ``n`` images of A, then ``n`` of B. ``out`` (a .png,
    .jpg or .webp file) is never an input, and an existing file is replaced only with ``overwrite``."""
    out, fmt = checked_output(out, n, size)
    inputs = {folder: list_images(folder)[:n] for folder in (dir_a, dir_b)}
    check_targets([out], inputs=[f for fs in inputs.values() for f in fs], input_folders=[dir_a, dir_b],
                  overwrite=overwrite)
    gens = load_generators(checkpoint, device, plugins=plugins, weights=weights)
    rows = []
    data = gens.config.data
    # A method that learns one direction (CUT) gives input | translated rows for it alone.
    for folder, first, second, direction, spec in ((dir_a, gens.G, gens.F, "AtoB", data.a),
                                                  (dir_b, gens.F, gens.G, "BtoA", data.b)):
        if first is None:
            continue
        label = row_label(direction, second is not None)
        for f in inputs[folder]:
            if spec.is_default:  # as always: PIL's resize of the 8-bit image
                img = load_rgb(f, spec)
                if size:
                    img = img.resize((size, size), Image.BICUBIC)
                x = to_tensor(img)
            else:
                x = load_tensor(f, spec)
                if size:
                    x = resize(x, size, size)
            x = x.unsqueeze(0).to(device)
            y = translate_batch(first, x)
            shown = (x, y) if second is None else (x, y, translate_batch(second, y))
            rows.append((label, [shown_image(t[0]) for t in shown]))
    return write_sheet(rows, out, fmt)


def checked_output(out: str | Path, n: int, size: int | None) -> tuple[Path, str]:
    """The grid's path and PIL format, after checking --n, --size and the file's suffix."""
    if n < 1 or (size is not None and size < 1):
        raise UsageError(f"--n and --size must be at least 1, got --n {n}" + ("" if size is None else f" --size {size}"))
    out = Path(out)
    fmt = FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise UsageError(f"--output {out}: the grid is an image; name a {', '.join(FORMATS)} file")
    return out, fmt


def write_sheet(rows: list, out: Path, fmt: str, columns: str | None = None) -> Path:
    """A sheet of ``rows`` ((label, [PIL images])), a header line per label run (``columns``, or by
    default input | translated [| reconstructed]), written atomically."""
    w, h = rows[0][1][0].size
    pad, head = 4, 14
    cols = max(len(imgs) for _, imgs in rows)
    sheet = Image.new("RGB", (cols * w + (cols + 1) * pad, 2 * head + len(rows) * (h + pad) + pad), "white")
    draw = ImageDraw.Draw(sheet)
    y0 = 0
    for i, (label, imgs) in enumerate(rows):
        if i == 0 or rows[i - 1][0] != label:
            heading = columns or " | ".join(CYCLE_COLUMNS[:len(imgs)])
            draw.text((pad, y0 + 2), f"{label}: {heading}", fill="black")
            y0 += head
        for j, im in enumerate(imgs):
            sheet.paste(im.resize((w, h)), (pad + j * (w + pad), y0 + pad))
        y0 += h + pad
    sheet = sheet.crop((0, 0, sheet.width, y0 + pad))
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        sheet.save(tmp, format=fmt)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def pairs_grid(checkpoint: str | Path, pairs: str | Path, out: str | Path, *, n: int = 6, size: int | None = None,
               device: str = "cpu", overwrite: bool = False, plugins: Sequence[str] = ()) -> Path:
    """Rows of (input, translated, ground truth) from ``n`` aligned test pairs, for each direction the run
    learns (pix2pix: its one; CycleGAN: A -> B, then B -> A)."""
    from .data.paired import aligned_files, load_aligned
    from .data.decode import as_tensor

    out, fmt = checked_output(out, n, size)
    folder = Path(pairs)
    files = aligned_files(folder.parent, folder.name, "--pairs")[:n]
    check_targets([out], inputs=files, input_folders=[folder], overwrite=overwrite)
    gens = load_generators(checkpoint, device, plugins=plugins)
    data = gens.config.data
    rows = []
    for direction, net in (("AtoB", gens.G), ("BtoA", gens.F)):
        if net is None:
            continue
        for f in files:
            pair = [as_tensor(x) for x in load_aligned(f, data.a, data.b)]
            if size:
                pair = [resize(x, size, size) for x in pair]
            x, target = (pair[0], pair[1]) if direction == "AtoB" else (pair[1], pair[0])
            y = translate_batch(net, x.unsqueeze(0).to(device))[0]
            rows.append((row_label(direction, False), [shown_image(t) for t in (x, y, target)]))
    return write_sheet(rows, out, fmt, " | ".join(PAIRED_COLUMNS))
