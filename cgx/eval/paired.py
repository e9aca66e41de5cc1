"""Evaluation with ground truth (paired test data): each translation scored against its target image.

Per direction the method learns (``translators``): the source half of every test pair is translated and
compared with the target half, pixel by pixel (L1, PSNR, SSIM), and the translations' Inception features
against the targets' give FID and KID, as in ``cgx.eval.evaluate``. Both images are taken as a saved 8-bit
PNG would hold them (rounded to 8 bits) and scaled to [0, 1]:

- ``L1``: mean |output - target| over pixels and channels, averaged over images ([0, 1] units);
- ``PSNR``: 10 log10(1 / MSE) in dB per image (data range 1), averaged over images;
- ``SSIM``: torchmetrics' structural similarity per image (Gaussian window 11, sigma 1.5, data range 1),
  averaged over images.

A CycleGAN scored on pairs gets both directions (G: A -> B against B, F: B -> A against A); pix2pix the one
it learns. Collective, as ``cgx.eval.evaluate``: every rank takes its contiguous share of the pairs."""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm import tqdm

from ..choices import DIRECTIONS
from ..config import ImageSpec
from ..data.decode import DEFAULT, as_tensor, rgb_view
from ..data.images import DataError
from ..data.paired import aligned_files, load_aligned
from .evaluate import (_rows, _runs_of_equal_size, directions_of, how_scored, kid_and_fid, kid_text, scored_as,
                       skip_reason, to_uint8, translate)
from .fid_kid import kid_spread

PIXEL_METRICS = {
    "L1": "mean |output - target| per pixel and channel, images rounded to 8 bits and scaled to [0, 1]",
    "PSNR": "dB, 10 log10(1 / MSE) per image (data range 1, 8-bit rounded), mean over images",
    "SSIM": "torchmetrics structural_similarity_index_measure per image (Gaussian 11, sigma 1.5, data range 1, "
            "8-bit rounded), mean over images",
}


class PairSet:
    """Test pairs: a folder of aligned A | B images (recursive, sorted), the first ``max_images`` of them."""

    def __init__(self, folder: str | Path, key: str, max_images: int | None = None,
                 spec_a: ImageSpec = DEFAULT, spec_b: ImageSpec = DEFAULT) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise DataError(f"{key}: folder of aligned test pairs (A | B side by side) not found: {folder}")
        self.folder, self.key, self.specs = folder, key, {"A": spec_a, "B": spec_b}
        self.files = aligned_files(folder.parent, folder.name, key)
        self.total = len(self.files) if max_images is None else min(len(self.files), max_images)

    def __len__(self) -> int:
        return self.total

    def load(self, indices: range) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Pairs ``indices`` as float (C, H, W) tensors in [-1, 1]."""
        return [tuple(as_tensor(x) for x in load_aligned(f, self.specs["A"], self.specs["B"]))
                for f in self.files[indices.start:indices.stop]]


def _u01(x: torch.Tensor) -> torch.Tensor:
    return to_uint8(x).double() / 255.0


def pixel_scores(fake: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(N, 3) float64: per image L1, PSNR, SSIM of ``fake`` against ``target`` (both in [-1, 1])."""
    from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure

    f, t = _u01(fake), _u01(target)
    l1 = (f - t).abs().mean(dim=(1, 2, 3))
    psnr = peak_signal_noise_ratio(f, t, data_range=1.0, reduction="none", dim=(1, 2, 3))
    ssim = structural_similarity_index_measure(f, t, data_range=1.0, reduction="none")
    return torch.stack([l1, psnr, ssim], 1)


@torch.no_grad()
def evaluate_paired(translators: dict, pairs: PairSet, directions: tuple[str, ...], features, collective, *,
                    batch_size: int = 16, progress: bool = True, bands=None, examples=None,
                    precision: str = "fp32") -> dict:
    """Collective. ``translators``: direction -> bare network (a method's ``translators``); directions it
    lacks are left out (a requested one that none learns is a DataError). Returns ``{direction: {L1, PSNR,
    SSIM, FID, KID_mean, KID_std, n_translated, n_real}}`` on every rank. ``examples``, ``precision``: as
    ``cgx.eval.evaluate.evaluate`` (the page's rows: input | translated | ground truth)."""
    world, device = collective.world, collective.device
    if len(pairs) < 2:
        raise DataError(f"{pairs.key}: FID/KID need at least 2 pairs, {pairs.folder} gives {len(pairs)}")
    chosen = [d for d in directions if translators.get(d) is not None]
    if not chosen:
        raise DataError(f"the run learns {', '.join(d for d in DIRECTIONS if translators.get(d) is not None)} only; "
                        f"--direction {'/'.join(directions)} has no generator to score")
    nets = [(n, n.training) for n in (*(translators[d] for d in chosen), features)]
    for n, _ in nets:
        n.eval()
    share = world.share(len(pairs))
    parts = {d: {"real": [], "fake": [], "pixel": []} for d in chosen}
    bar = tqdm(total=len(share), unit="pair", desc="eval (pairs)", disable=not (progress and world.is_main))
    try:
        with torch.random.fork_rng(devices=[]):
            for start in range(share.start, share.stop, batch_size):
                chunk = pairs.load(range(start, min(start + batch_size, share.stop)))
                for run in _runs_of_equal_size([torch.cat(p) for p in chunk]):
                    ca = pairs.specs["A"].channels
                    both = torch.stack(run).to(device)
                    images = {"A": both[:, :ca], "B": both[:, ca:]}
                    for d in chosen:
                        x, y = images[d[0]], images[d[-1]]
                        fake = translate(translators[d], x, precision)
                        parts[d]["pixel"].append(pixel_scores(fake, y))
                        if examples is not None:
                            examples.offer(d, x, fake, y)
                        shown_fake, shown_real = rgb_view(fake, bands), rgb_view(y, bands)
                        if shown_fake is not None:
                            parts[d]["fake"].append(features(to_uint8(shown_fake)))
                            parts[d]["real"].append(features(to_uint8(shown_real)))
                    bar.update(len(run))
    finally:
        bar.close()
        for n, mode in nets:
            n.train(mode)
    out: dict[str, dict] = {}
    for d in chosen:
        pixel = torch.cat(parts[d]["pixel"]) if parts[d]["pixel"] else torch.zeros((0, 3), dtype=torch.float64)
        sums = collective.all_reduce(torch.cat([pixel.sum(0), torch.tensor([float(len(pixel))], dtype=torch.float64)])
                                     .to(device), "sum").cpu()
        n = float(sums[3])
        record = {"L1": float(sums[0] / n), "PSNR": float(sums[1] / n), "SSIM": float(sums[2] / n)}
        target = pairs.specs[d[-1]]
        if scored_as(target.channels, bands) is None:
            out[d] = {**record, "FID": None, "KID_mean": None, "KID_std": None, "n_translated": int(n), "n_real": 0,
                      "skipped": skip_reason(target.channels, f"domain {d[-1]}")}
            continue
        fake = collective.all_gather_rows(_rows(parts[d]["fake"], device)).cpu()
        real = collective.all_gather_rows(_rows(parts[d]["real"], device)).cpu()
        out[d] = {**record, **kid_and_fid(real, fake, collective), "n_translated": fake.shape[0],
                  "n_real": real.shape[0]}
    return out


def report_paired(results: dict, *, step: int, checkpoint: str, pairs: PairSet, weights, world_size: int,
                  command: str, bands=None, translated: str = "fp32") -> dict:
    """The JSON record of one paired evaluation (the unpaired record's fields, plus what the pixel scores are)."""
    return {
        "step": step,
        "checkpoint": str(checkpoint),
        "scores": results,
        "paired": {"pairs": str(pairs.folder), "count": len(pairs), "layout": "aligned (A | B side by side)",
                   "metrics": PIXEL_METRICS,
                   "fid_kid": "each direction's translations against its targets (the ground-truth halves)"},
        "images": {d: {"channels": s.channels, "depth": s.depth,
                       "scored_as": scored_as(s.channels, bands) or "not scored (FID/KID need RGB; no eval.bands)"}
                   for d, s in pairs.specs.items()},
        **how_scored(results, weights, world_size, command, translated),
    }


def table_paired(results: dict) -> str:
    lines = [f"{'direction':<10} {'L1':>8} {'PSNR dB':>8} {'SSIM':>7} {'FID':>10} {'KID mean ± std':>22} {'pairs':>6}"]
    for d, r in results.items():
        fid_text = f"{r['FID']:>10.3f} {kid_text(r, 12, 7)}" if r["FID"] is not None \
            else f"{'-':>10} {'-':>22}"
        lines.append(f"{d:<10} {r['L1']:>8.4f} {r['PSNR']:>8.2f} {r['SSIM']:>7.4f} {fid_text} {r['n_translated']:>6}")
    notes = [f"{d}: KID spread: {kid_spread(r['n_real'], r['n_translated'])}"
             for d, r in results.items() if r["FID"] is not None and r["KID_std"] is None]
    return "\n".join(lines + notes)


def summary_paired(results: dict) -> str:
    return "; ".join(f"{d}: L1 {r['L1']:.4f}, PSNR {r['PSNR']:.2f} dB, SSIM {r['SSIM']:.4f}"
                     + (f", FID {r['FID']:.2f}, KID {r['KID_mean']:.4f}" if r["FID"] is not None else "")
                     for d, r in results.items())


__all__ = ["PairSet", "directions_of", "evaluate_paired", "pixel_scores", "report_paired", "summary_paired",
           "table_paired"]
