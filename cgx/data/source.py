"""The training input: batches of unpaired images ``{"A": (B, 3, H, W), "B": ...}`` per step.

A source knows how many steps make an epoch and yields the batches of one rank from any start
step, so that a resumed run continues the exact stream. The folder source reads the authors'
layout (``{root}/{phase}A``, ``{root}/{phase}B``); other sources (shards) provide the same two
things: ``steps_per_epoch`` and ``batches(start_step)``.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator, Protocol

import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from ..config import DataConfig
from .images import DataError, list_images, load_rgb
from .plan import Plan
from .transforms import Augment
from .workers import ignore_stop_signals


class UnpairedSource(Protocol):
    steps_per_epoch: int
    epoch_length: int

    def batches(self, start_step: int) -> Iterator[dict]: ...


class _PlannedImages(Dataset):
    """Map-style dataset keyed by (epoch, position): returns that position's A and B images."""

    def __init__(self, files_a: list[Path], files_b: list[Path], plan: Plan, augment: Augment) -> None:
        self.files = {"A": files_a, "B": files_b}
        self.plan = plan
        self.augment = augment

    def __len__(self) -> int:
        return self.plan.epoch_length

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, pos = key
        out = {}
        for d in ("A", "B"):
            path = self.files[d][self.plan.index(d, epoch, pos)]
            gen = torch.Generator().manual_seed(self.plan.sample_seed(d, epoch, pos))
            out[d] = self.augment(load_rgb(path), gen)
        return out


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


class FolderSource:
    def __init__(self, cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 shuffle: bool = True) -> None:
        root = Path(cfg.root)
        if not root.is_dir():
            raise DataError(f"data.root: folder not found: {root} (expected {cfg.phase}A/ and {cfg.phase}B/ in it)")
        self.files_a = list_images(root / f"{cfg.phase}A")
        self.files_b = list_images(root / f"{cfg.phase}B")
        self.plan = Plan(len(self.files_a), len(self.files_b), world, batch, seed, shuffle)
        self.augment = Augment(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)
        self.rank, self.batch, self.workers = rank, batch, cfg.workers
        self.steps_per_epoch = self.plan.steps_per_epoch
        self.epoch_length = self.plan.epoch_length

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        dataset = _PlannedImages(self.files_a, self.files_b, self.plan, self.augment)
        loader = DataLoader(
            dataset,
            batch_size=self.batch,
            sampler=_StepSampler(self.plan, self.rank, start_step, stop_step),
            num_workers=self.workers,
            persistent_workers=False,
            prefetch_factor=4 if self.workers else None,
            worker_init_fn=ignore_stop_signals,
            pin_memory=torch.cuda.is_available(),
        )
        return iter(loader)


def build_source(cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0) -> UnpairedSource:
    """The source ``data.source`` names: ``folder`` (FolderSource) or ``shards`` (cgx.data.shards)."""
    if cfg.source == "shards":
        from .shards import ShardSource  # imports webdataset only when used

        return ShardSource(cfg, batch=batch, rank=rank, world=world, seed=seed)
    return FolderSource(cfg, batch=batch, rank=rank, world=world, seed=seed)
