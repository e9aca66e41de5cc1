"""The values users choose from, listed once (and importable without torch, for the CLI and the
recipe loader): precisions, translation directions, evaluation metrics.

AtoB is G (domain A to domain B), BtoA is F. Everything a user reads (commands, recipe keys, loss
tags, eval records) spells them this way."""
from __future__ import annotations

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
"""train.precision and --precision (cgx.precision resolves auto)."""
DIRECTIONS = ("AtoB", "BtoA")
FCN_SCORES = ("mean_iou", "pixel_accuracy", "class_accuracy")
"""The FCN score's means (cgx.eval.fcn_score), higher is better."""
METRICS = tuple(f"{score}_{d}" for score in ("FID", "KID", *FCN_SCORES) for d in (*DIRECTIONS, "mean"))
"""What ``eval.metric`` may pick the best checkpoint by: FID_AtoB, FID_BtoA, FID_mean, KID_AtoB, ..., and with
eval.labels the FCN score's mean_iou_AtoB, pixel_accuracy_AtoB, class_accuracy_AtoB, ... (the direction last)."""


def higher_is_better(metric: str) -> bool:
    """FID and KID are lower the better; the FCN scores higher."""
    return metric.rpartition("_")[0] in FCN_SCORES
PLUGIN_KINDS = ("method", "generator", "discriminator", "adversarial_loss", "reconstruction_loss", "buffer", "logger")
PLUGIN_KINDS += ("augment",)  # discriminator augmentation (issue 30); one line per added kind, so kinds merge
"""The plugin kinds, in cgx.plugins.KINDS's order (which checks it holds the same names): the CLI names
them without importing torch, so a command that needs no network (cgx datasets) never loads it."""
PLUGIN_KINDS += ("segmenter",)  # segmentation networks (method.semantic.network): issue 28
