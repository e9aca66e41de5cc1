"""The training input: batches of unpaired images ``{"A": (B, 3, H, W), "B": ...}`` per step.

A source knows how many steps make an epoch and yields the batches of one rank from any start
step, so that a resumed run continues the exact stream. The folder source reads the authors'
layout (``{root}/{phase}A``, ``{root}/{phase}B``); other sources (shards) provide the same two
things: ``steps_per_epoch`` and ``batches(start_step)``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Iterator, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler, default_collate

from ..config import DataConfig
from .decode import DEFAULT, load
from .images import DataError, list_images
from .corrupt import skip_or_raise, stand_in
from .loader import HandsOutBatches
from .plan import Plan
from .label_maps import label_files, labels_folder, read_label_map
from .transforms import Augment, LabelledAugment, size_of
from .workers import ignore_stop_signals

log = logging.getLogger("cgx.data")


class UnpairedSource(Protocol):
    """What the trainer reads data from (``FolderSource``, ``cgx.data.shards.ShardSource``)."""

    steps_per_epoch: int
    epoch_length: int
    """Samples in an epoch over all ranks: max(|A|, |B|)."""

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        """This rank's batches ``{"A": (N, C, H, W), "B": ..., "skipped": int}`` (and ``"A_labels"``,
        ``"B_labels"``: int64 (N, H, W), where the domain has labels: ``data.a.labels``) of steps
        ``start_step`` .. ``stop_step - 1`` (None: on and on); a generator (``close()`` ends its workers)."""

    def close(self) -> None:
        """Close every batch iterator handed out."""


class _PlannedImages(Dataset):
    """Map-style dataset keyed by (epoch, position): returns that position's A and B images.

    An image that cannot be read follows ``data.on_corrupt`` as in the shard source: ``raise`` stops
    with a DataError naming the file; ``skip`` warns, counts it (``skipped``, logged as
    ``data/skipped``) and takes the next readable file of the domain (in sorted order, wrapping) in
    its place. The stand-in depends only on the file list, so a resumed run sees the same one."""

    def __init__(self, files_a: list[Path], files_b: list[Path], plan: Plan, augment: Augment,
                 on_corrupt: str = "skip", specs: dict | None = None, labels: dict | None = None) -> None:
        """``labels``: per domain with label maps, the label file of each of its files (``cgx.data.label_maps``);
        its samples are then (image, label map), read and augmented together."""
        self.files = {"A": files_a, "B": files_b}
        self.labels = labels or {}
        self.specs = specs or {"A": DEFAULT, "B": DEFAULT}
        self.plan = plan
        self.augment = augment
        self.on_corrupt = on_corrupt

    def __len__(self) -> int:
        return self.plan.epoch_length

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, pos = key
        out = {"skipped": 0}
        for d in ("A", "B"):
            i = self.plan.index(d, epoch, pos)
            path, image = self._read(d, i)
            out["skipped"] += path != self.files[d][i]
            gen = torch.Generator().manual_seed(self.plan.sample_seed(d, epoch, pos))
            try:
                if self.labels.get(d) is None:
                    out[d] = self.augment(image, gen)
                else:  # (image, label map): cropped and flipped with the same draws
                    out[d], out[f"{d}_labels"] = LabelledAugment(self.augment)(image, gen)
            except DataError as e:
                raise DataError(f"{path}: {e}") from None
        return out

    def _read(self, d: str, i: int):
        """(path, image) of file ``i`` of domain ``d``, or of its stand-in if it is unreadable (or does
        not fit the domain's spec, ``cgx.data.decode``): ``cgx.data.corrupt``."""
        files = self.files[d]
        try:
            return files[i], self._load(d, i)
        except DataError as e:
            skip_or_raise(self.on_corrupt, f"domain {d}: {e}", "images")

        def read(k: int):
            j = (i + k) % len(files)
            try:
                return files[j], self._load(d, j)
            except DataError:
                return None

        return stand_in(read, len(files) - 1,
                        f"domain {d}: none of its {len(files)} images can be read (data.on_corrupt=skip)")


    def _load(self, d: str, i: int):
        """File ``i`` of domain ``d`` decoded; with labels, (image, its label map): a label map that cannot be
        read, or does not fit its image, makes the sample unreadable as a bad image does."""
        image = load(self.files[d][i], self.specs[d])
        labels = self.labels.get(d)
        if labels is None:
            return image
        spec = self.specs[d]
        return image, read_label_map(labels[i], spec.labels, size_of(image), f"data.{d.lower()}.labels")


def _collate(items: list[dict]) -> dict:
    """Stack the images (and label maps); ``skipped`` is the batch's total (what the trainer adds up)."""
    batch = default_collate([{d: item[d] for d in ("A", "B", "A_labels", "B_labels") if d in item} for item in items])
    batch["skipped"] = sum(item["skipped"] for item in items)
    return batch


class _StepSampler(Sampler):
    """Yields (epoch, position) keys of one rank's batches, step after step, from ``start``."""

    def __init__(self, plan: Plan, rank: int, start: int, stop: int | None) -> None:
        self.plan, self.rank, self.start, self.stop = plan, rank, start, stop

    def __iter__(self):
        step = self.start
        while self.stop is None or step < self.stop:
            epoch, positions = self.plan.positions(step, self.rank)
            for p in positions:
                yield (epoch, p)
            step += 1


class FolderSource(HandsOutBatches):
    def __init__(self, cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 shuffle: bool = True) -> None:
        root = Path(cfg.root)
        if not root.is_dir():
            from ..datasets.catalog import fetch_hint

            raise DataError(f"data.root: folder not found: {root} (expected {cfg.phase}A/ and {cfg.phase}B/ in it; "
                            f"{fetch_hint(cfg.root, paired=False)})")
        self.files_a = list_images(root / f"{cfg.phase}A")
        self.files_b = list_images(root / f"{cfg.phase}B")
        self.labels = {}  # domain -> the label map of each of its files (data.a.labels, data.b.labels)
        for d, files in (("A", self.files_a), ("B", self.files_b)):
            if getattr(cfg, d.lower()).labels is not None:
                folder = root / f"{cfg.phase}{d}"
                self.labels[d] = label_files(files, folder, labels_folder(folder), f"data.{d.lower()}.labels")
        self.plan = Plan(len(self.files_a), len(self.files_b), world, batch, seed, shuffle)
        self.augment = Augment(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)
        self.rank, self.batch, self.workers = rank, batch, cfg.workers
        self.on_corrupt = cfg.on_corrupt
        self.specs = {"A": cfg.a, "B": cfg.b}
        self.steps_per_epoch = self.plan.steps_per_epoch
        self.epoch_length = self.plan.epoch_length

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        dataset = _PlannedImages(self.files_a, self.files_b, self.plan, self.augment, self.on_corrupt, self.specs,
                                 self.labels)
        loader = DataLoader(
            dataset,
            batch_size=self.batch,
            collate_fn=_collate,
            sampler=_StepSampler(self.plan, self.rank, start_step, stop_step),
            num_workers=self.workers,
            persistent_workers=False,
            prefetch_factor=4 if self.workers else None,
            worker_init_fn=ignore_stop_signals,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: a DataLoader otherwise draws its base seed from torch's global one,
            # and a resumed run (which makes its loader after restoring the RNG) would then draw
            # differently from an uninterrupted one in the step (dropout, CUT's patch sampling).
            # The samples' augmentation is seeded by their position, not by the workers' seeds.
            generator=torch.Generator().manual_seed(0),
        )
        return self._hand_out(loader)


def build_source(cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0) -> UnpairedSource:
    """The source ``data.source`` names: ``folder`` (FolderSource) or ``shards`` (cgx.data.shards); with
    ``data.paired`` their paired forms (cgx.data.paired)."""
    if cfg.paired:
        from .paired import PairedFolderSource, PairedShardSource

        cls = PairedShardSource if cfg.source == "shards" else PairedFolderSource
        return cls(cfg, batch=batch, rank=rank, world=world, seed=seed)
    if cfg.source == "shards":
        from .shards import ShardSource  # imports webdataset only when used

        return ShardSource(cfg, batch=batch, rank=rank, world=world, seed=seed)
    return FolderSource(cfg, batch=batch, rank=rank, world=world, seed=seed)
