"""The results page of one evaluation: ``index.html`` in a folder beside the JSON record
(``RUN/eval/step_N/index.html``, ``cgx.run_dir.page_of``), its images beside it, every link relative,
so the folder can be copied or served as it is.

Per direction: rows of input | translated | reconstructed (a method without a reverse network, CUT:
input | translated; paired test data: input | translated | ground truth), the columns and labels of
``cgx grid`` (``cgx.grid``), and where the FCN score was computed (``cgx.eval.fcn_score``) a segmentation
column: the segmenter's classes painted over the translation; then the scores table (and the EMA weights' scores where they were
scored), what the scores are (KID's spread, the precision the translations were made in), the
command and the recipe.

The images are the evaluation's own: the first ``Examples.n`` images of each direction (under
torchrun those of rank 0's share) as the evaluation translated and scored them, each shown as the
8-bit RGB image Inception saw (``cgx.grid.shown_image``; an N-band domain without ``eval.bands`` by
its first three bands), scaled down to at most ``THUMB`` pixels on the long side where larger.

The page is written into a temporary folder and renamed into place whole (an older page of the same
step is swapped out), so a crash leaves no half page; everything taken from the recipe, the record
or the command line is HTML-escaped."""
from __future__ import annotations

import html
import os
import shutil
from pathlib import Path

import torch
from PIL import Image

from ..grid import CYCLE_COLUMNS, PAIRED_COLUMNS, row_label, shown_image

ROWS = 8
SEGMENTATION_COLUMN = ("segmentation",)
"""Images per direction on the page."""
THUMB = 256
"""Longest side of a page image in pixels; larger images are scaled down (Lanczos)."""


class Examples:
    """What the page shows: per direction, the first ``n`` rows of images an evaluation offers."""

    def __init__(self, n: int = ROWS, bands=None, paired: bool = False) -> None:
        self.n, self.bands, self.paired = n, bands, paired
        self.rows: dict[str, list[list[Image.Image]]] = {}
        self.palettes: dict[str, list[list[int]]] = {}
        """Per direction scored by the FCN score: the colours its classes are overlaid in."""
        self.segmented: set[str] = set()

    def offer(self, direction: str, *columns: torch.Tensor | None, segmentation: torch.Tensor | None = None) -> None:
        """Batches (N, C, H, W) in [-1, 1] of the same N images: input, translated, then the
        reconstruction or the ground truth (None: there is none). Kept until ``n`` rows are full.
        ``segmentation``: the classes (N, H, W) a segmenter found in the translations (the FCN score), shown
        as a last column, overlaid on the translation in ``palettes[direction]``."""
        rows = self.rows.setdefault(direction, [])
        for i in range(min(self.n - len(rows), columns[0].shape[0])):
            row = [thumbnail(shown_image(c[i], self.bands)) for c in columns if c is not None]
            if segmentation is not None:
                self.segmented.add(direction)
                row.append(thumbnail(overlay(shown_image(columns[1][i], self.bands), segmentation[i],
                                             self.palettes.get(direction))))
            rows.append(row)


OVERLAY_ALPHA = 0.6
"""How much of a segmentation overlay is the class colour (the rest: the translated image)."""


def overlay(image: Image.Image, classes: torch.Tensor, palette: list[list[int]] | None) -> Image.Image:
    """``image`` with each pixel's class (``classes`` (H, W)) painted over it in ``palette``'s colour."""
    import numpy as np

    table = np.asarray(palette if palette else [[0, 0, 0], [255, 255, 255]], dtype=np.float32)
    k = classes.detach().cpu().numpy().clip(0, len(table) - 1)
    colours = table[k]
    if colours.shape[:2] != (image.height, image.width):
        colours = np.asarray(Image.fromarray(colours.astype(np.uint8)).resize(image.size, Image.NEAREST), np.float32)
    base = np.asarray(image, dtype=np.float32)
    mixed = OVERLAY_ALPHA * colours + (1 - OVERLAY_ALPHA) * base
    return Image.fromarray(mixed.round().clip(0, 255).astype(np.uint8), "RGB")


def recipe_text(config) -> str | None:
    """The resolved recipe (a ``cgx.config.Config``) as YAML, for the page; None without one."""
    if config is None:
        return None
    import yaml

    return yaml.safe_dump(config.to_dict(), sort_keys=False)


def is_page_folder(folder: str | Path) -> bool:
    """``folder`` holds a results page as ``write_page`` writes it and nothing else: ``index.html`` and
    per-direction folders of PNG images (no link anywhere). Only such a folder is ever replaced."""
    from ..choices import DIRECTIONS

    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir() or not (folder / "index.html").is_file():
        return False
    for p in folder.iterdir():
        if p.is_symlink():
            return False
        if p.name == "index.html" and p.is_file():
            continue
        if p.name in DIRECTIONS and p.is_dir() and all(
                q.suffix == ".png" and q.is_file() and not q.is_symlink() for q in p.iterdir()):
            continue
        return False
    return True


def thumbnail(image: Image.Image) -> Image.Image:
    w, h = image.size
    if max(w, h) <= THUMB:
        return image
    scale = THUMB / max(w, h)
    return image.resize((max(1, round(w * scale)), max(1, round(h * scale))), Image.LANCZOS)


def write_page(index: Path, record: dict, examples: Examples | None, recipe: str | None,
               record_file: Path | None = None) -> Path:
    """Write the page ``index`` (``.../step_N/index.html``) of ``record`` (the evaluation's JSON
    record), atomically: built in a temporary folder beside it, then renamed into place."""
    from ..train.checkpoint import swap_into_place

    index = Path(index)
    folder = index.parent
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f".{folder.name}.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        sections = []
        for direction, rows in (examples.rows if examples is not None else {}).items():
            (tmp / direction).mkdir()
            names = PAIRED_COLUMNS if examples.paired else CYCLE_COLUMNS
            if direction in examples.segmented:  # the last column: the FCN score's segmentation
                names = names[:len(rows[0]) - 1] + SEGMENTATION_COLUMN
            for i, row in enumerate(rows):
                for name, image in zip(names, row):
                    image.save(tmp / direction / f"{i:03d}_{name.replace(' ', '_')}.png")
            sections.append(_images_html(direction, rows, names, examples.paired))
        link = None
        if record_file is not None:
            link = os.path.relpath(Path(record_file).resolve(), folder.resolve())
        shown = (f"Images: the first {examples.n if examples else 0} test images of each direction (under torchrun, "
                 f"of rank 0's share), as the evaluation translated and scored them (translated in "
                 f"{record.get('translated_in', '?')}), shown as 8-bit RGB, at most {THUMB} px.")
        (tmp / index.name).write_text(_page_html(record, sections, recipe, link, shown), encoding="utf-8")
        swap_into_place(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return index


def _e(value) -> str:
    return html.escape(str(value), quote=True)


STYLE = """
body { font-family: sans-serif; margin: 16px; color: #111; background: #fff; }
table.scores { border-collapse: collapse; margin-bottom: 8px; }
table.scores th, table.scores td { border: 1px solid #bbb; padding: 3px 8px; text-align: right; }
table.scores td:first-child, table.scores th:first-child { text-align: left; }
table.images { border-collapse: collapse; }
table.images td { padding: 2px 4px 2px 0; vertical-align: top; }
table.images th { text-align: left; font-weight: normal; color: #555; }
img { display: block; }
div.directions { display: flex; flex-wrap: wrap; gap: 8px 40px; }
pre { background: #f4f4f4; padding: 8px; overflow: auto; }
.note { color: #555; }
"""


def _images_html(direction: str, rows: list, names: tuple, paired: bool) -> str:
    cols = len(rows[0]) if rows else 0
    label = row_label(direction, not paired and "reconstructed" in names[:cols]).replace("->", "→")
    head = "".join(f"<th>{_e(n)}</th>" for n in names[:cols])
    body = []
    for i, row in enumerate(rows):
        cells = []
        for name, image in zip(names, row):
            src = f"{direction}/{i:03d}_{name.replace(' ', '_')}.png"
            cells.append(f'<td><img src="{_e(src)}" width="{image.width}" height="{image.height}" '
                         f'alt="{_e(direction)} image {i} {_e(name)}"></td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<div class="direction">\n<h2 id="{_e(direction)}">{_e(label)}</h2>\n<table class="images">\n'
            f'<tr>{head}</tr>\n' + "\n".join(body) + "\n</table>\n</div>")


def _number(value, digits: int) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _scores_html(scores: dict, what: str = "") -> list[str]:
    paired = any("PSNR" in r for r in scores.values())
    columns = ([("L1", "L1", 4), ("PSNR", "PSNR dB", 2), ("SSIM", "SSIM", 4)] if paired else []) + \
        [("FID", "FID", 3), ("KID_mean", "KID mean", 5), ("KID_std", "KID std", 5)] + \
        ([] if paired else [("cycle_L1", "cycle L1", 4)]) + \
        ([("pixel_accuracy", "pixel acc (FCN)", 4), ("class_accuracy", "class acc (FCN)", 4), ("mean_iou", "mean IoU (FCN)", 4)]
         if any("mean_iou" in r for r in scores.values()) else [])
    head = "<tr><th>direction</th>" + "".join(f"<th>{_e(t)}</th>" for _, t, _ in columns) + \
        "<th>images (translated / real)</th></tr>"
    rows = []
    for d, r in scores.items():
        cells = "".join(f"<td>{_e(_number(r.get(k), n))}</td>" for k, _, n in columns)
        rows.append(f"<tr><td>{_e(d + what)}</td>{cells}<td>{_e(r.get('n_translated'))} / {_e(r.get('n_real'))}</td></tr>")
    return [head, *rows]


def _notes(record: dict) -> list[str]:
    notes = []
    for d, r in record.get("scores", {}).items():
        if r.get("skipped"):
            notes.append(f"{d}: FID/KID skipped: {r['skipped']}")
        if r.get("cycle_L1_skipped"):
            notes.append(f"{d}: cycle L1 not available: {r['cycle_L1_skipped']}")
        if r.get("fcn"):
            notes.append(f"{d}: FCN score: the segmenter {r['fcn']['segmenter']} on the translations, against the label "
                         f"maps {r['fcn']['labels']} of the inputs ({r['fcn']['pixels']} labelled pixels); the "
                         f"segmentation column shows its classes over the translation")
    for d, spread in record.get("kid", {}).get("spread", {}).items():
        notes.append(f"{d}: KID spread: {spread}")
    return notes


def _page_html(record: dict, sections: list[str], recipe: str | None, link: str | None, shown: str) -> str:
    step = record.get("step")
    table = _scores_html(record.get("scores", {}))
    if record.get("ema"):
        table += _scores_html(record["ema"], " (EMA)")[1:]
    facts = [("checkpoint", record.get("checkpoint")), ("step", step),
             ("generator weights", record.get("generator_weights")),
             ("images shown: weights", record.get("page_images")),
             ("translated in", record.get("translated_in")), ("command", record.get("command"))]
    facts_html = "\n".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in facts if v is not None)
    notes = "".join(f"<li>{_e(n)}</li>" for n in _notes(record))
    parts = [
        "<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
        f"<title>cgx eval: step {_e(step)}</title>", f"<style>{STYLE}</style>", "</head>", "<body>",
        f"<h1>Evaluation at step {_e(step)}</h1>",
        '<table class="scores">', *table, "</table>",
        f'<ul class="note">{notes}</ul>' if notes else "",
        '<table class="facts">', facts_html, "</table>",
    ]
    if link is not None:
        parts.append(f'<p>The whole record: <a href="{_e(link)}">{_e(Path(link).name)}</a></p>')
    if sections:
        parts.append(f'<p class="note">{_e(shown)}</p>')
    if sections:
        parts += ['<div class="directions">', *sections, "</div>"]
    if recipe is not None:
        parts += ["<h2>Recipe</h2>", f"<pre>{_e(recipe)}</pre>"]
    else:
        parts.append('<p class="note">No recipe: the generators came from files without one.</p>')
    parts += ["</body>", "</html>", ""]
    return "\n".join(p for p in parts if p != "")
