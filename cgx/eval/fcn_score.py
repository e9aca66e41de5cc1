"""The FCN score (Zhu et al. 2017, Tables 1-2; Isola et al. 2017): how well a segmenter recognises, in the
translated images, what the input images' labels say.

For a direction (AtoB: G's translations of the A test images), a segmenter (``cgx.eval.segmenters``) labels
each translated image, and its prediction is compared with the label map of the input image
(``cgx.data.label_maps``) pixel by pixel, into one confusion matrix over the whole test set
(``truth`` rows, ``prediction`` columns; pixels whose truth is ``ignore_index`` left out). From it, as the
authors' ``evaluate.py`` of the Cityscapes FCN score computes them:

- **per-pixel accuracy**: correctly labelled pixels / all pixels;
- **per-class accuracy**: the mean, over the classes present in the truth, of each class's pixels labelled
  correctly / its pixels;
- **mean class IoU**: the mean, over the classes present in the truth or the prediction, of
  intersection / union. A class absent from both is left out of both means (its 0/0 is no score);
  a class predicted but absent from the truth counts as IoU 0.

Under torchrun each rank adds its share of the images into its own matrix; the matrices are summed
(``all_reduce``) before the scores, so they are those of the whole set whatever the world size.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..config import LabelSpec
from ..data.label_maps import label_files, read_label_map
from ..errors import DataError

SCORES = ("pixel_accuracy", "class_accuracy", "mean_iou")
"""The FCN scores of a direction in the record, the table and the loggers (``eval/mean_iou_AtoB``)."""
HEADINGS = {"pixel_accuracy": "pixel acc", "class_accuracy": "class acc", "mean_iou": "mean IoU"}


def confusion(prediction: torch.Tensor, truth: torch.Tensor, classes: int, ignore_index: int) -> torch.Tensor:
    """(classes, classes) int64 counts: row = the truth's class, column = the prediction's, over every pixel
    whose truth is not ``ignore_index``. ``prediction`` and ``truth``: integer tensors of one shape."""
    keep = truth != ignore_index
    t, p = truth[keep].long(), prediction[keep].long()
    return torch.bincount(t * classes + p, minlength=classes * classes).reshape(classes, classes).cpu()


def fcn_scores(matrix: torch.Tensor | np.ndarray) -> dict:
    """Per-pixel accuracy, per-class accuracy and mean class IoU of a confusion matrix (see the module's
    docstring), with each class's IoU (None for a class absent from truth and prediction)."""
    m = np.asarray(matrix, dtype=np.float64)
    diag, truth, predicted = np.diag(m), m.sum(1), m.sum(0)
    total = m.sum()
    present = truth > 0
    union = truth + predicted - diag
    scored = union > 0
    iou = np.divide(diag, union, out=np.zeros_like(diag), where=scored)
    accuracy = np.divide(diag, truth, out=np.zeros_like(diag), where=present)
    return {
        "pixel_accuracy": float(diag.sum() / total) if total else None,
        "class_accuracy": float(accuracy[present].mean()) if present.any() else None,
        "mean_iou": float(iou[scored].mean()) if scored.any() else None,
        "class_iou": [float(v) if s else None for v, s in zip(iou, scored)],
        "pixels": int(total),
    }


class LabelSet:
    """The label maps of a folder of test images (``--labels DIR``: the same relative path under DIR,
    ``.png``), read by index as the images are (``cgx.eval.image_set.ImageSet``)."""

    def __init__(self, folder: str | Path, images, spec: LabelSpec, key: str) -> None:
        if images.kind != "folder":
            raise DataError(f"{key}: label maps are matched to test images by file name, so the test images "
                            f"({images.key} {images.spec}) must be a folder, not shards")
        self.folder, self.spec, self.key = Path(folder), spec, key
        root = Path(images.spec)
        self.files = label_files(images.files[:len(images)], root, self.folder, key)
        self.images = images

    def load(self, indices: range, sizes: list[tuple[int, int]]) -> list[torch.Tensor]:
        """The label maps of images ``indices`` (int64 (H, W)), each checked to be ``sizes[i]`` (w, h)."""
        return [torch.from_numpy(read_label_map(self.files[i], self.spec, size, self.key))
                for i, size in zip(indices, sizes)]


def overlay_palette(scorer: "FcnScorer") -> list[list[int]]:
    """The colours the results page shows the classes in: the labels' palette, the palette segmenter's, or a
    fixed set of distinct colours."""
    import colorsys

    palette = scorer.labels.spec.palette or getattr(scorer.segmenter, "colours", None)
    if palette is not None:
        return [list(c) for c in palette]
    return [[round(255 * v) for v in colorsys.hsv_to_rgb((k * 0.618034) % 1.0, 0.85, 0.95)]
            for k in range(scorer.classes)]


class FcnScorer:
    """One direction's FCN score, accumulated batch by batch: ``add`` runs the segmenter on translated
    images and counts them against the inputs' label maps; ``scores`` sums the ranks' counts (collective)."""

    def __init__(self, segmenter, labels: LabelSet, device) -> None:
        self.segmenter, self.labels = segmenter, labels
        self.classes, self.ignore = labels.spec.classes, labels.spec.ignore_index
        self.matrix = torch.zeros(self.classes, self.classes, dtype=torch.int64)
        self.device = device

    @torch.no_grad()
    def add(self, indices: range, fake: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """Count the translations ``fake`` (N, C, H, W) of images ``indices``, whose inputs (and so their label
        maps) are ``size`` (H, W); their predicted classes (N, H, W)."""
        h, w = size
        truth = self.labels.load(indices, [(w, h)] * len(indices))
        prediction = self.segmenter(fake)
        if self.segmenter.classes is not None and self.segmenter.classes != self.classes:
            raise DataError(f"{self.labels.key}: the segmenter {self.segmenter.describe} gives {self.segmenter.classes} "
                            f"classes, the label maps have {self.classes}")
        if prediction.shape[-2:] != (h, w):  # a segmenter at another resolution: nearest back to the labels'
            prediction = torch.nn.functional.interpolate(prediction[:, None].float(), size=(h, w),
                                                         mode="nearest-exact")[:, 0].long()
        bad = (prediction < 0) | (prediction >= self.classes)
        if bad.any():
            raise DataError(f"{self.labels.key}: the segmenter predicts class {int(prediction[bad][0])}, the labels "
                            f"have {self.classes} classes (0..{self.classes - 1})")
        self.matrix += confusion(prediction.cpu(), torch.stack(truth), self.classes, self.ignore)
        return prediction

    def scores(self, collective) -> dict:
        """Collective: the whole set's scores (every rank's counts summed), the same on every rank."""
        out = fcn_scores(collective.all_reduce(self.matrix.to(collective.device), "sum").cpu())
        out["segmenter"] = self.segmenter.describe
        out["labels"] = str(self.labels.folder)
        return out


def build_scorers(labels: dict, segmenter: str, sets: dict, specs: dict, device, *, key: str = "--labels",
                  context=None) -> dict[str, FcnScorer]:
    """Per direction (``AtoB``, ``BtoA``) with a folder of label maps in ``labels`` (None: not scored), the
    scorer of its translations. ``sets``: the input test images per direction (``ImageSet``); ``specs``: the
    ``LabelSpec`` of those inputs' domain (the recipe's ``data.a.labels``; None: class indices, as many classes
    as the segmenter gives, ignore index 255). ``segmenter``: ``cgx.eval.segmenters.build_segmenter``'s value."""
    from .segmenters import build_segmenter

    labels = {d: folder for d, folder in labels.items() if folder}
    if not labels:
        return {}
    first = next(iter(labels))
    seg = build_segmenter(segmenter, device, context=context, recipe_palette=getattr(specs.get(first), "palette", None),
                          recipe_key=f"data.{first[0].lower()}.labels")
    out = {}
    for direction, folder in labels.items():
        name = key if direction == "AtoB" else f"{key}_b" if key.startswith("eval.") else "--labels-b"
        spec = specs.get(direction)
        if spec is None:
            spec = LabelSpec(classes=seg.classes or probe_classes(seg, sets[direction], device))
        elif seg.classes is not None and seg.classes != spec.classes:
            raise DataError(f"{name}: the segmenter {seg.describe} gives {seg.classes} classes, the labels' domain has "
                            f"{spec.classes} (data.{direction[0].lower()}.labels.classes)")
        if not Path(folder).is_dir():
            raise DataError(f"{name}: folder not found: {folder}")
        out[direction] = FcnScorer(seg, LabelSet(folder, sets[direction], spec, name), device)
    return out


@torch.no_grad()
def probe_classes(seg, images, device) -> int:
    """The class count of a segmenter that says none before it runs: its output on the first test image
    (every rank reads the same one, so every rank gets the same count)."""
    from ..data.decode import as_tensor

    x = images.load(range(0, 1))[0]
    x = (x.float() / 127.5 - 1) if x.dtype == torch.uint8 else as_tensor(x)
    seg(x[None].to(device))
    return seg.classes
