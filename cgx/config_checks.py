"""The checks a recipe passes after its keys are parsed (cgx.config): ranges, and what one key asks of another
(channels, labels, paired data, evaluation). Each raises a one-line ConfigError naming the key."""
from __future__ import annotations

import math

from .config import RANGES, Config, LabelSpec, _at
from .errors import ConfigError


def _check_range(where: str, key: str, value, low, high, low_ok: bool) -> None:
    if value is None:  # optional key left unset
        return
    ok = math.isfinite(value) and (value >= low if low_ok else value > low) and (high is None or value < high)
    if not ok:
        if high is not None:
            accepted = f"in [{low}, {high})" if low_ok else f"in ({low}, {high})"
        elif low == 0:
            accepted = ">= 0" if low_ok else "positive"
        else:
            accepted = f">= {low}" if low_ok else f"> {low}"
        raise ConfigError(f"{_at(where, key)}: {key} must be {accepted}, got {value}")


def _check_config(cfg: Config, where: str) -> None:
    for key, low, high, low_ok in RANGES:
        section, name = key.split(".")
        _check_range(where, key, getattr(getattr(cfg, section), name), low, high, low_ok)
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"{where}: optim.betas must be two numbers, got {cfg.optim.betas}")
    for i, beta in enumerate(cfg.optim.betas):
        _check_range(where, f"optim.betas[{i}]", beta, 0, 1, True)
    d = cfg.distributed
    if d.zero_stage not in (0, 1, 2):
        raise ConfigError(f"{where}: distributed.zero_stage must be 0, 1 or 2, got {d.zero_stage}")
    if d.offload_optimizer and (d.strategy != "deepspeed" or d.zero_stage == 0):
        raise ConfigError(f"{where}: distributed.offload_optimizer needs distributed.strategy=deepspeed "
                          f"and distributed.zero_stage >= 1")
    if d.offload_optimizer and cfg.optim.name != "adam":
        raise ConfigError(f"{where}: distributed.offload_optimizer=true needs optim.name=adam (DeepSpeed's CPU Adam), "
                          f"got optim.name={cfg.optim.name}")
    for group, section in cfg.optim.groups.items():
        if d.offload_optimizer and section.name not in (None, "adam"):
            raise ConfigError(f"{_at(where, f'optim.{group}.name')}: distributed.offload_optimizer=true needs adam for "
                              f"every group (DeepSpeed's CPU Adam), got optim.{group}.name={section.name}")
    _check_paired(cfg, where)
    if cfg.data.source == "shards" and not cfg.data.paired:
        for key in ("shards_a", "shards_b"):
            if not getattr(cfg.data, key):
                raise ConfigError(f"{where}: data.{key} must be set when data.source=shards "
                                  f"(shard URLs, e.g. data/h2z/trainA-{{000000..000011}}.tar)")
    _check_eval(cfg, where)
    _check_images(cfg, where)
    if cfg.data.preprocess in ("resize_and_crop", "scale_width_and_crop") and cfg.data.load_size < cfg.data.crop_size:
        raise ConfigError(
            f"{where}: data.load_size ({cfg.data.load_size}) must be >= data.crop_size ({cfg.data.crop_size})"
        )


def _check_paired(cfg: Config, where: str) -> None:
    """Paired data names its shards in data.shards (both images in each sample); unpaired in shards_a/shards_b."""
    d = cfg.data
    if d.paired:
        labelled = [k for k in ("a", "b") if getattr(d, k).labels is not None]
        if labelled:
            raise ConfigError(f"{where}: data.{labelled[0]}.labels: label maps are read for unpaired data (folders, "
                              f"shards_a/shards_b); data.paired=true does not read them: set data.{labelled[0]}.labels "
                              f"to null, or data.paired=false")
        given = [k for k in ("shards_a", "shards_b", "index_a", "index_b") if getattr(d, k)]
        if given:
            raise ConfigError(f"{where}: data.{given[0]} is for unpaired shards; with data.paired=true name the paired "
                              f"shards (`cgx shards --paired`) in data.shards (and data.index)")
        if d.source == "shards" and not d.shards:
            raise ConfigError(f"{where}: data.shards must be set when data.source=shards and data.paired=true "
                              f"(paired shard URLs, e.g. data/facades/train-{{000000..000003}}.tar)")
    elif d.shards or d.index:
        key = "shards" if d.shards else "index"
        raise ConfigError(f"{where}: data.{key} names paired shards, but data.paired=false; set data.paired=true, or "
                          f"use data.shards_a and data.shards_b for unpaired shards")


def _check_eval(cfg: Config, where: str) -> None:
    e = cfg.eval
    if e.every < 0:
        raise ConfigError(f"{where}: eval.every must be >= 0 (0: no evaluation), got {e.every}")
    if e.every and e.every % cfg.train.ckpt_every:
        raise ConfigError(f"{where}: eval.every ({e.every}) must be a multiple of train.ckpt_every "
                          f"({cfg.train.ckpt_every}): each evaluation scores the checkpoint written at its step")
    if e.max_images is not None and e.max_images < 2:
        raise ConfigError(f"{where}: eval.max_images must be >= 2 (FID needs 2 images) or null, got {e.max_images}")
    if e.batch_size <= 0:
        raise ConfigError(f"{where}: eval.batch_size must be positive, got {e.batch_size}")
    kind, _, which = e.metric.rpartition("_")
    if e.directions != "both" and which != e.directions:
        raise ConfigError(f"{where}: eval.metric={e.metric} needs eval.directions=both"
                          f"{'' if which == 'mean' else ' or ' + which}, got eval.directions={e.directions}")
    given = {"AtoB": e.labels, "BtoA": e.labels_b}
    if (e.labels or e.labels_b) and not e.segmenter:
        raise ConfigError(f"{where}: eval.{'labels' if e.labels else 'labels_b'} needs eval.segmenter (what labels the "
                          f"translated images for the FCN score: a TorchScript or ONNX file, or palette:COLOURS)")
    if (e.labels or e.labels_b) and (e.pairs or cfg.data.paired):
        raise ConfigError(f"{where}: eval.labels scores the unpaired evaluation (eval.a, eval.b); it cannot be used "
                          f"with eval.pairs or data.paired=true")
    if kind not in ("FID", "KID"):
        needed = ("AtoB", "BtoA") if which == "mean" else (which,)
        missing = [d for d in needed if not given[d]]
        if missing:
            key = "eval.labels" if missing[0] == "AtoB" else "eval.labels_b"
            raise ConfigError(f"{where}: eval.metric={e.metric} is an FCN score of {', '.join(missing)}: set {key} (the "
                              f"label maps of the {missing[0][0]} test images) and eval.segmenter")


MAX_CHANNELS = 64
"""The most channels a domain may have (a recipe typo such as 300 is refused before a network is built)."""


def _check_images(cfg: Config, where: str) -> None:
    for d in ("a", "b"):
        spec = getattr(cfg.data, d)
        if not 1 <= spec.channels <= MAX_CHANNELS:
            raise ConfigError(f"{where}: data.{d}.channels must be 1 (grey), 3 (RGB) or another count up to "
                              f"{MAX_CHANNELS}, got {spec.channels}")
        _check_range(where, f"data.{d}.max_pixels", spec.max_pixels, 0, None, False)
        if spec.labels is not None:
            check_labels(spec.labels, f"data.{d}.labels", where)
    bands = cfg.eval.bands
    if bands is not None:
        if len(bands) != 3 or len(set(bands)) != 3:
            raise ConfigError(f"{where}: eval.bands must be three different band numbers (0-based, shown as R, G, B), "
                              f"got {bands}")
        for d in ("a", "b"):
            n = getattr(cfg.data, d).channels
            if n not in (1, 3) and not all(0 <= i < n for i in bands):
                raise ConfigError(f"{where}: eval.bands {bands}: data.{d} has {n} channels, so bands must be 0..{n - 1}")
    _check_eval_bands(cfg, where)


MAX_CLASS_VALUE = 65535
"""The largest value a label map can hold (16-bit PNG): classes and ignore_index stay at or below it."""


def check_labels(spec: LabelSpec, key: str, where: str) -> None:
    """A ConfigError naming ``key`` (data.a.labels) for a class count, ignore index or palette that cannot be."""
    if not 1 <= spec.classes <= MAX_CLASS_VALUE:
        raise ConfigError(f"{where}: {key}.classes must be 1 .. {MAX_CLASS_VALUE}, got {spec.classes}")
    if not spec.classes <= spec.ignore_index <= MAX_CLASS_VALUE:
        raise ConfigError(f"{where}: {key}.ignore_index must not be a class: {spec.classes} .. {MAX_CLASS_VALUE} "
                          f"({key}.classes is {spec.classes}), got {spec.ignore_index}")
    if spec.palette is None:
        return
    if len(spec.palette) != spec.classes:
        raise ConfigError(f"{where}: {key}.palette must give one [r, g, b] per class ({spec.classes}), "
                          f"got {len(spec.palette)} colours")
    seen: dict[tuple, int] = {}
    for i, colour in enumerate(spec.palette):
        if len(colour) != 3 or not all(0 <= c <= 255 for c in colour):
            raise ConfigError(f"{where}: {key}.palette[{i}] must be [r, g, b] with each 0..255, got {colour}")
        if tuple(colour) in seen:
            raise ConfigError(f"{where}: {key}.palette[{i}] {colour} is also class {seen[tuple(colour)]}'s colour; "
                              f"each class needs its own colour")
        seen[tuple(colour)] = i


def _check_eval_bands(cfg: Config, where: str) -> None:
    """An evaluation during training must be able to compute the metric that picks the best checkpoint."""
    e = cfg.eval
    if not e.every or e.bands is not None:
        return
    kind, _, which = e.metric.rpartition("_")
    if kind not in ("FID", "KID"):  # an FCN score: _check_eval names what it needs
        return
    targets = {"AtoB": ("b",), "BtoA": ("a",), "mean": ("a", "b")}[which]
    for d in targets:
        n = getattr(cfg.data, d).channels
        if n not in (1, 3):
            raise ConfigError(f"{where}: eval.metric={e.metric} needs FID/KID of images of data.{d} ({n} channels), "
                              f"which Inception cannot see without eval.bands (three of its bands as R, G, B): set "
                              f"eval.bands, or an eval.metric of the other direction")
