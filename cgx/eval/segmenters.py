"""The segmenter of the FCN score (``cgx eval --segmenter MODEL``, ``eval.segmenter``): what labels the translated
images (``cgx.eval.fcn_score``). Every kind is a callable ``images (N, C, H, W) in [-1, 1] -> classes (N, H, W)``
(int64) with ``classes`` (its class count, None until known) and ``describe`` (for the record).

- ``FILE.pt`` / ``FILE.ts`` / ``FILE.torchscript``: a TorchScript module (``torch.jit.load``: running the file
  is running code; it is the user's own, named on the command line) mapping images in [-1, 1] to logits
  (N, classes, H, W), as a ``segmenter`` plugin does; the class is the argmax.
- ``FILE.onnx``: the same as an ONNX model, run by onnxruntime (``pip install 'cgx[export]'``).
- ``palette:COLOURS``: for translations that are themselves colour-coded label maps (photo -> labels): each
  pixel's class is the nearest colour (squared RGB distance, ties to the lower class) of ``COLOURS``:
  ``#rrggbb`` values separated by commas, or ``recipe`` for the palette of the labels' domain in the run's
  recipe (``data.a.labels.palette``).
- ``run``: the run's own segmenter group (``method.semantic``), where the run has one (``SEAMS``).

An unknown value is a UsageError listing these.
"""
from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..errors import UsageError
from ..safe_text import shown

TORCHSCRIPT_SUFFIXES = (".pt", ".ts", ".torchscript", ".pth")
ACCEPTED = ("a TorchScript file (.pt, .ts, .torchscript: images in [-1, 1] -> logits (N, classes, H, W)), "
            "an ONNX file (.onnx), palette:COLOURS (#rrggbb,#rrggbb,... or palette:recipe: translations that are "
            "colour-coded label maps), or run (the run's own segmenter)")


class Segmenter:
    """Base of the segmenters here: ``__call__(images) -> classes``; ``classes``; ``describe``."""

    classes: int | None = None
    describe: str = ""

    def __call__(self, images: torch.Tensor) -> torch.Tensor:  # pragma: no cover -- every kind has its own
        raise NotImplementedError


class LogitsSegmenter(Segmenter):
    """A network giving logits (N, classes, H, W): the class of a pixel is the argmax."""

    def __init__(self, forward: Callable[[torch.Tensor], torch.Tensor], describe: str) -> None:
        self.forward, self.describe = forward, describe

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.forward(images.float())
        if not isinstance(logits, torch.Tensor) or logits.dim() != 4 or logits.shape[0] != images.shape[0]:
            got = tuple(logits.shape) if isinstance(logits, torch.Tensor) else type(logits).__name__
            raise UsageError(f"--segmenter {shown(self.describe)} gives {got} for images {tuple(images.shape)}; a "
                             f"segmenter gives logits (N, classes, H, W)")
        self.classes = logits.shape[1]
        return logits.argmax(1)


class PaletteSegmenter(Segmenter):
    """Colour-coded translations: each pixel's class is the nearest of ``palette``'s colours."""

    def __init__(self, palette: list[list[int]], describe: str) -> None:
        self.colours = palette
        self.palette = torch.tensor(palette, dtype=torch.float32)
        self.classes, self.describe = len(palette), describe

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        if images.shape[1] != 3:
            raise UsageError(f"--segmenter {shown(self.describe)} reads colours: the translated images have "
                             f"{images.shape[1]} channels, not 3 (RGB)")
        rgb = ((images.float().clamp(-1, 1) + 1) * 127.5).round()  # as the 8-bit image the translation is
        palette = self.palette.to(images.device)
        best = torch.zeros(rgb.shape[0], *rgb.shape[2:], dtype=torch.int64, device=images.device)
        nearest = torch.full(best.shape, float("inf"), device=images.device)
        for k, colour in enumerate(palette):  # one class at a time: memory of one image batch, not classes of them
            d = ((rgb - colour[None, :, None, None]) ** 2).sum(1)
            closer = d < nearest  # strictly: a tie stays with the lower class
            best[closer], nearest[closer] = k, d[closer]
        return best


def parse_palette(text: str, recipe_palette: list | None, recipe_key: str) -> list[list[int]]:
    """``#rrggbb,#rrggbb,...`` (or ``recipe``: the recipe's palette) as [[r, g, b], ...]."""
    if text == "recipe":
        if recipe_palette is None:
            raise UsageError(f"--segmenter palette:recipe: the run's recipe gives no {recipe_key}.palette; name the "
                             f"colours (palette:#000000,#ff0000,...)")
        return [list(c) for c in recipe_palette]
    colours = []
    for item in text.split(","):
        m = re.fullmatch(r"#?([0-9a-fA-F]{6})", item.strip())
        if not m:
            raise UsageError(f"--segmenter palette:{shown(text)}: {shown(item)} is not a colour; give #rrggbb values "
                             f"separated by commas, one per class in class order (or palette:recipe)")
        v = int(m.group(1), 16)
        colours.append([v >> 16, (v >> 8) & 255, v & 255])
    if len(colours) < 2 or len({tuple(c) for c in colours}) != len(colours):
        raise UsageError(f"--segmenter palette:{shown(text)}: give at least two different colours, one per class")
    return colours


def _torchscript(path: Path, device) -> Segmenter:
    try:
        with warnings.catch_warnings():  # torch >= 2.9 calls TorchScript deprecated; it is what users hand us
            warnings.simplefilter("ignore", FutureWarning)
            module = torch.jit.load(str(path), map_location=device)
    except Exception as e:  # noqa: BLE001 -- torch raises many kinds for a file that is not TorchScript
        raise UsageError(f"--segmenter {shown(path)} is not a TorchScript file torch.jit.load reads "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
    module.eval()
    return LogitsSegmenter(module, str(path))


def _onnx(path: Path, device) -> Segmenter:
    from ..extras import require

    require("onnxruntime", extra="export", what=f"--segmenter {shown(path)} (an ONNX file)")
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as e:  # noqa: BLE001
        raise UsageError(f"--segmenter {shown(path)} is not an ONNX model onnxruntime loads "
                         f"({type(e).__name__}: {str(e).splitlines()[0][:200] if str(e) else ''})") from None
    name = session.get_inputs()[0].name

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = session.run(None, {name: x.detach().cpu().numpy().astype(np.float32)})[0]
        return torch.from_numpy(out).to(x.device)

    return LogitsSegmenter(forward, str(path))


def _run_segmenter(context) -> Segmenter:
    from .run_segmenter import run_segmenter  # (it imports this module)

    return run_segmenter(context)


SEAMS: dict[str, Callable] = {"run": _run_segmenter}
"""Named segmenters beside files and palettes: ``run`` (the run's own segmenter group; the semantic method
replaces this entry with one that builds it from ``context``, the loaded generators)."""


def build_segmenter(value: str, device, *, recipe_palette: list | None = None, recipe_key: str = "data.a.labels",
                    context=None) -> Segmenter:
    """The segmenter ``value`` names (see the module's docstring)."""
    if not isinstance(value, str) or not value:
        raise UsageError(f"--segmenter must name {ACCEPTED}")
    if value in SEAMS:
        return SEAMS[value](context)
    if value.startswith("palette:"):
        return PaletteSegmenter(parse_palette(value[len("palette:"):], recipe_palette, recipe_key), value)
    path = Path(value)
    suffix = path.suffix.lower()
    if suffix == ".onnx" or suffix in TORCHSCRIPT_SUFFIXES:
        if not path.is_file():
            raise UsageError(f"--segmenter {shown(value)}: file not found")
        return _onnx(path, device) if suffix == ".onnx" else _torchscript(path, device)
    raise UsageError(f"--segmenter {shown(value)} is not one cgx knows: it takes {ACCEPTED}")


