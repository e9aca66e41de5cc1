"""One evaluation: translate the test images with G (A->B) and F (B->A), and score, per direction,
the translated images against the real images of the target domain (FID, KID mean ± std) and the
cycle reconstruction against the input (mean L1 in [-1, 1] units).

Collective: every rank translates and embeds its contiguous share of each image set
(``WorldInfo.share``), the features are gathered in rank order (so they are the whole set in order,
none duplicated or dropped) and scored on rank 0; every rank gets the scores.

FID/KID are defined on RGB: a grey domain is scored with its channel repeated three times, an N-channel
domain by the three ``bands`` given (``eval.bands``, ``--bands``), shown as R, G, B; without them the
FID/KID of the direction into that domain are skipped (None, with the reason) while its cycle L1 is
still computed. The JSON record says which (``images.{A,B}.scored_as``).

A method that learns one direction (CUT: ``F`` is None) is scored in that direction alone; its cycle
L1 is None (``cycle_L1_skipped`` says why): there is no network to translate back with.

The translations are made in ``precision`` (``cgx.precision``; fp32 unless asked otherwise: the same
scores on any hardware), recorded as ``translated_in``. KID's std is None where a subset holds every
image of a set (``cgx.eval.fid_kid.has_spread``; the record's ``kid.spread`` says which). With
``examples`` (``cgx.eval.page.Examples``) the first images of each direction, as translated and scored
here, are kept for the results page."""
from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from tqdm import tqdm

from ..choices import DIRECTIONS, METRICS  # noqa: F401 -- METRICS: what a best checkpoint is chosen by
from ..data.decode import rgb_view
from ..errors import DataError
from ..infer import translate_batch
from ..precision import autocast, describe
from .image_set import ImageSet
from .inception import FEATURES, RESIZE_MODE, InceptionFeatures, InceptionWeights
from .fid_kid import KID_DEGREE, KID_SEED, KID_SUBSETS, fid, has_spread, kid, kid_spread, kid_subset_size


def directions_of(choice: str, learned: tuple[str, ...] = DIRECTIONS) -> tuple[str, ...]:
    """The directions to score for ``choice`` (both, AtoB, BtoA): ``both`` means every direction the
    method ``learned``. A learned-less direction asked by name is the caller's error to word."""
    if choice == "both":
        return tuple(d for d in DIRECTIONS if d in learned)
    if choice not in DIRECTIONS:
        raise ValueError(f"direction must be both, AtoB or BtoA, got {choice!r}")
    return (choice,)


def no_reverse(direction: str) -> str:
    back = "BtoA" if direction == "AtoB" else "AtoB"
    return f"no {back} network (the method learns {direction} only): nothing translates back for a cycle"


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8, rounded as a saved PNG is (``cgx.data.transforms.to_image``)."""
    return ((x.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def translate(net: torch.nn.Module, x: torch.Tensor, precision: str = "fp32") -> torch.Tensor:
    """``translate_batch`` under the autocast of ``precision`` (the evaluation's; fp32: none)."""
    with autocast(precision, x.device):
        return translate_batch(net, x)


def translated_in(precision: str, device) -> str:
    """The record's ``translated_in``: the precision the scored translations were made in."""
    return describe(precision, torch.device(device))


def _runs_of_equal_size(images: list[torch.Tensor]) -> list[list[torch.Tensor]]:
    runs: list[list[torch.Tensor]] = []
    for im in images:
        if runs and runs[-1][0].shape == im.shape:
            runs[-1].append(im)
        else:
            runs.append([im])
    return runs


class _Side:
    """What one domain's share yields: its own features (as the real target of the other direction),
    the features of its translations, and the cycle L1 sum."""

    def __init__(self) -> None:
        self.real: list[torch.Tensor] = []
        self.fake: list[torch.Tensor] = []
        self.l1_sum = 0.0
        self.count = 0


def scored_as(channels: int, bands) -> str | None:
    """How a domain of ``channels`` is shown to Inception, or None when it cannot be (FID/KID skipped)."""
    if channels == 3:
        return "RGB"
    if channels == 1:
        return "grey, the channel replicated to R, G, B"
    if bands is None:
        return None
    return f"bands {list(bands)} as R, G, B"


def skip_reason(channels: int, key: str) -> str:
    return (f"{key} has {channels} channels: FID/KID need RGB; set eval.bands (cgx eval --bands) to three of "
            f"its bands to score it")


@torch.no_grad()
def _embed_share(images: ImageSet, share: range, forward, backward, features: InceptionFeatures, device,
                 batch_size: int, want_real: bool, want_fake: bool, bar, bands=None, direction: str = "",
                 examples=None, precision: str = "fp32", scorer=None) -> _Side:
    side = _Side()
    for start in range(share.start, share.stop, batch_size):
        chunk = images.load(range(start, min(start + batch_size, share.stop)))
        first = start  # the set index of the run's first image
        for run in _runs_of_equal_size(chunk):
            batch = torch.stack(run).to(device)
            if batch.dtype == torch.uint8:  # 8-bit RGB, read as always
                u8, x = batch, batch.float() / 127.5 - 1
            else:
                x = batch
                shown = rgb_view(x, bands)
                u8 = None if shown is None else to_uint8(shown)
            if want_real and u8 is not None:
                side.real.append(features(u8))
            if want_fake:
                fake = translate(forward, x, precision)
                shown = rgb_view(fake, bands)
                if shown is not None:
                    side.fake.append(features(to_uint8(shown)))
                rec = None
                if backward is not None:
                    rec = translate(backward, fake, precision)
                    side.l1_sum += float((rec - x).abs().mean(dim=(1, 2, 3)).double().sum())
                segmented = None
                if scorer is not None:  # the FCN score: a segmenter on the translations, against the inputs' labels
                    segmented = scorer.add(range(first, first + len(run)), fake, tuple(x.shape[-2:]))
                if examples is not None:
                    examples.offer(direction, x, fake, rec, segmentation=segmented)
                side.count += len(run)
            first += len(run)
            bar.update(len(run))
    return side


def _rows(parts: list[torch.Tensor], device) -> torch.Tensor:
    return torch.cat(parts).to(device) if parts else torch.zeros((0, FEATURES), dtype=torch.float64, device=device)


def evaluate(G: torch.nn.Module | None, F: torch.nn.Module | None, set_a: ImageSet, set_b: ImageSet, directions: tuple[str, ...],
             features: InceptionFeatures, collective, *, batch_size: int = 16, progress: bool = True,
             bands=None, examples=None, precision: str = "fp32", fcn: dict | None = None) -> dict:
    """Collective. ``collective``: a ``cgx.distributed`` strategy (``world``, ``device``,
    ``all_gather_rows``, ``all_reduce``). Returns ``{direction: {FID, KID_mean, KID_std, cycle_L1,
    n_translated, n_real}}`` on every rank. ``G`` or ``F`` may be None (a method that learns one direction):
    the other direction is scored alone, without cycle L1 (None, ``cycle_L1_skipped`` says why).
    ``examples``: filled with this rank's first images of each direction (the results page);
    ``precision``: of the translations (``cgx.precision``); ``fcn``: per direction, a ``cgx.eval.fcn_score.FcnScorer``
    of its translations (the same directions on every rank): its scores join the direction's (``pixel_accuracy``,
    ``class_accuracy``, ``mean_iou``, and ``fcn``: the details)."""
    world, device = collective.world, collective.device
    for direction, net in (("AtoB", G), ("BtoA", F)):
        if direction in directions and net is None:
            raise ValueError(f"no {direction} network to evaluate")
    for images in (set_a, set_b):  # every rank knows the counts: all stop here together
        if len(images) < 2:
            raise DataError(f"{images.key}: FID/KID need at least 2 images, {images.spec} gives {len(images)}")
    nets = [(n, n.training) for n in (G, F, features) if n is not None]
    for n, _ in nets:
        n.eval()
    share_a, share_b = world.share(len(set_a)), world.share(len(set_b))
    bar = tqdm(total=len(share_a) + len(share_b), unit="img", desc="eval", disable=not (progress and world.is_main))
    try:
        with torch.random.fork_rng(devices=[]):
            common = dict(bar=bar, bands=bands, examples=examples, precision=precision)
            fcn = {d: f for d, f in (fcn or {}).items() if d in directions}
            a = _embed_share(set_a, share_a, G, F, features, device, batch_size, want_real="BtoA" in directions,
                             want_fake="AtoB" in directions, direction="AtoB", scorer=fcn.get("AtoB"), **common)
            b = _embed_share(set_b, share_b, F, G, features, device, batch_size, want_real="AtoB" in directions,
                             want_fake="BtoA" in directions, direction="BtoA", scorer=fcn.get("BtoA"), **common)
    finally:
        bar.close()
        for n, mode in nets:
            n.train(mode)
    out: dict[str, dict] = {}
    for direction, src, tgt, target, back in (("AtoB", a, b, set_b, F), ("BtoA", b, a, set_a, G)):
        if direction not in directions:
            continue
        cycle = {} if back is not None else {"cycle_L1_skipped": no_reverse(direction)}
        if scored_as(target.image.channels, bands) is None:  # the same on every rank: no collective skipped unevenly
            l1 = collective.all_reduce(torch.tensor([src.l1_sum, float(src.count)], dtype=torch.float64, device=device), "sum")
            out[direction] = {"FID": None, "KID_mean": None, "KID_std": None,
                              "cycle_L1": float(l1[0] / l1[1]) if back is not None else None,
                              "n_translated": int(l1[1]), "n_real": 0,
                              "skipped": skip_reason(target.image.channels, target.key), **cycle}
            continue
        fake = collective.all_gather_rows(_rows(src.fake, device)).cpu()
        real = collective.all_gather_rows(_rows(tgt.real, device)).cpu()
        l1 = collective.all_reduce(torch.tensor([src.l1_sum, float(src.count)], dtype=torch.float64, device=device), "sum")
        out[direction] = {**kid_and_fid(real, fake, collective),
                          "cycle_L1": float(l1[0] / l1[1]) if back is not None else None,
                          "n_translated": fake.shape[0], "n_real": real.shape[0], **cycle}
    for direction, scorer in fcn.items():  # collective: in the same order on every rank
        add_fcn(out[direction], scorer.scores(collective))
    return out


def add_fcn(result: dict, scores: dict) -> None:
    """A direction's FCN scores into its results: the three means beside FID/KID, the rest under ``fcn``."""
    from .fcn_score import SCORES

    result.update({k: scores[k] for k in SCORES})
    result["fcn"] = {k: v for k, v in scores.items() if k not in SCORES}


def kid_and_fid(real: torch.Tensor, fake: torch.Tensor, collective) -> dict:
    """Collective: FID, KID_mean and KID_std (None without a spread) of the gathered features, computed
    on rank 0, the same numbers on every rank."""
    scores = torch.zeros(3, dtype=torch.float64, device=collective.device)
    if collective.world.is_main:
        k_mean, k_std = kid(real, fake)
        scores = torch.tensor([fid(real, fake), k_mean, k_std or 0.0], dtype=torch.float64, device=collective.device)
    scores = collective.all_reduce(scores, "sum").cpu()  # rank 0's numbers, everywhere
    spread = has_spread(real.shape[0], fake.shape[0])  # the counts: known to every rank
    return {"FID": float(scores[0]), "KID_mean": float(scores[1]), "KID_std": float(scores[2]) if spread else None}


def metric_value(results: dict, metric: str) -> float:
    """A best-checkpoint metric (``METRICS``) from ``evaluate``'s results."""
    kind, _, which = metric.rpartition("_")
    key = {"FID": "FID", "KID": "KID_mean"}.get(kind, kind)  # or an FCN score: mean_iou, pixel_accuracy, ...
    if which != "mean" and which not in results:
        raise DataError(f"eval.metric={metric}: {which} is not evaluated (directions evaluated: {', '.join(results)})")
    directions = tuple(results) if which == "mean" else (which,)
    if key not in ("FID", "KID_mean") and any(key not in results[d] for d in directions):
        raise DataError(f"eval.metric={metric}: the FCN score of {', '.join(d for d in directions if key not in results[d])} "
                        f"is not evaluated (eval.labels names the label maps of the input test images)")
    values = [results[d][key] for d in directions]
    if any(v is None for v in values):
        raise DataError(f"eval.metric={metric}: {'; '.join(results[d].get('skipped', 'no score') for d in directions)}")
    return sum(values) / len(values)


def report(results: dict, *, step: int, checkpoint: str, set_a: ImageSet, set_b: ImageSet,
           weights: InceptionWeights, world_size: int, command: str, bands=None, translated: str = "fp32") -> dict:
    """The JSON record of one evaluation (``translated``: ``translated_in``'s text)."""
    images = {}
    for d, s in (("A", set_a), ("B", set_b)):
        images[d] = {"source": s.spec, "count": len(s), "channels": s.image.channels, "depth": s.image.depth,
                     "scored_as": scored_as(s.image.channels, bands) or "not scored (FID/KID need RGB; no eval.bands)"}
    return {
        "step": step,
        "checkpoint": str(checkpoint),
        "scores": results,
        "images": images,
        **how_scored(results, weights, world_size, command, translated),
    }


def how_scored(results: dict, weights, world_size: int, command: str, translated: str = "fp32") -> dict:
    """The fields of an evaluation record that say how FID/KID were computed and by what command
    (shared by the unpaired record and ``cgx.eval.paired``'s)."""
    return {
        "inception": {"weights": str(weights.path), "sha256": weights.sha256, "source": weights.source,
                      "features": "2048-d pool3, TF-Inception 2015-12-05 (torch-fidelity FeatureExtractorInceptionV3)"},
        "resize": RESIZE_MODE,
        "statistics": "float64",
        "kid": {"subsets": KID_SUBSETS, "degree": KID_DEGREE, "seed": KID_SEED,
                "subset_size": {d: kid_subset_size(r["n_real"], r["n_translated"]) for d, r in results.items()},
                "spread": {d: kid_spread(r["n_real"], r["n_translated"]) for d, r in results.items()
                           if r["FID"] is not None}},
        "translated_in": translated,
        "world_size": world_size,
        "command": command,
    }


def write_json(record: dict, path: str | Path) -> Path:
    """Atomically (temporary file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def fcn_columns(results: dict) -> tuple[str, list[str]]:
    """The FCN score columns of the table (a heading and a row per direction; empty where none was scored)."""
    from .fcn_score import HEADINGS, SCORES

    if not any("mean_iou" in r for r in results.values()):
        return "", ["" for _ in results]
    head = "".join(f" {HEADINGS[k]:>10}" for k in SCORES)
    rows = ["".join(f" {r[k]:>10.4f}" if r.get(k) is not None else f" {'-':>10}" for k in SCORES)
            for r in results.values()]
    return head, rows


def table(results: dict) -> str:
    fcn_head, fcn_rows = fcn_columns(results)
    lines = [f"{'direction':<10} {'FID':>10} {'KID mean ± std':>22} {'cycle L1':>9}{fcn_head} "
             f"{'images (translated / real)':>27}"]
    notes = []
    for (d, r), fcn in zip(results.items(), fcn_rows):
        l1 = f"{r['cycle_L1']:>9.4f}" if r["cycle_L1"] is not None else f"{'n/a':>9}"
        if r["cycle_L1"] is None:
            notes.append(f"{d}: cycle L1 not available: {r['cycle_L1_skipped']}")
        if r["FID"] is None:
            lines.append(f"{d:<10} {'-':>10} {'-':>12}   {'':<7} {l1}{fcn} {r['n_translated']:>14} / -")
            notes.append(f"{d}: FID/KID skipped: {r['skipped']}")
            continue
        lines.append(f"{d:<10} {r['FID']:>10.3f} {kid_text(r, 12, 7)} {l1}{fcn} {r['n_translated']:>14} / {r['n_real']}")
        if "fcn" in r:
            notes.append(f"{d}: FCN score: segmenter {r['fcn']['segmenter']} on the translations, against the label maps "
                         f"{r['fcn']['labels']} ({r['fcn']['pixels']} labelled pixels)")
        if r["KID_std"] is None:
            notes.append(f"{d}: KID spread: {kid_spread(r['n_real'], r['n_translated'])}")
    return "\n".join(lines + notes)


def kid_text(r: dict, width: int = 0, std_width: int = 0) -> str:
    """``0.26002 ± 0.00310``, or ``0.26002`` padded to the same width where there is no spread."""
    if r["KID_std"] is None:
        return f"{r['KID_mean']:>{width}.5f}   {'':<{std_width}}"
    return f"{r['KID_mean']:>{width}.5f} ± {r['KID_std']:<{std_width}.5f}"


def summary(results: dict) -> str:
    def one(d: str, r: dict) -> str:
        iou = f", mean IoU {r['mean_iou']:.4f}" if r.get("mean_iou") is not None else ""
        if r["FID"] is not None:
            spread = f" ± {r['KID_std']:.4f}" if r["KID_std"] is not None else ""
            return f"{d}: FID {r['FID']:.2f}, KID {r['KID_mean']:.4f}{spread}{iou}"
        l1 = f"cycle L1 {r['cycle_L1']:.4f}" if r["cycle_L1"] is not None else "cycle L1 not available"
        return f"{d}: FID/KID skipped, {l1}{iou}"
    return "; ".join(one(d, r) for d, r in results.items())
