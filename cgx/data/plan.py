"""Which images make up each step, for every rank, as a pure function of (seed, epoch, position).

An epoch is ``max(|A|, |B|)`` samples over all ranks, as in the authors' code: position ``p`` of
epoch ``e`` takes image ``perm_A(e, p // |A|)[p % |A|]`` of domain A and, independently,
``perm_B(e, p // |B|)[p % |B|]`` of domain B, so the smaller domain is cycled through fresh
permutations. Each optimizer step consumes the global batch, ``G = world * batch * accumulation``
consecutive positions; it is cut into ``G / batch`` micro-batches, and micro-batch ``m = rank *
accumulation + slot`` (rank ``r`` at accumulation slot ``k``) takes ``[s * G + m * batch, ... +
batch)``. Every rank therefore takes the same number of steps per epoch, ``max(1, L // G)``; the
tail of an epoch that does not fill a whole step is dropped. The positions of a step depend on
``G`` only, not on how it is split into ranks and accumulation, and a sample's augmentation is
seeded by its position: 1 x 4, 2 x 2 and 4 x 1 (ranks x accumulation) read and augment the same
samples per step. Because the plan is a pure function, resuming at any step continues exactly,
on any world size that divides the global batch.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch


@dataclass(frozen=True)
class Plan:
    size_a: int
    size_b: int
    world: int
    batch: int
    seed: int
    shuffle: bool = True
    accumulation: int = 1
    """Micro-batches per rank and optimizer step."""

    @property
    def epoch_length(self) -> int:
        return max(self.size_a, self.size_b)

    @property
    def global_batch(self) -> int:
        return self.world * self.batch * self.accumulation

    @property
    def steps_per_epoch(self) -> int:
        return max(1, self.epoch_length // self.global_batch)

    def positions(self, step: int, rank: int, slot: int = 0) -> tuple[int, list[int]]:
        """(epoch, positions in that epoch) of ``rank``'s micro-batch ``slot`` at global ``step``."""
        epoch, s = divmod(step, self.steps_per_epoch)
        first = s * self.global_batch + (rank * self.accumulation + slot) * self.batch
        return epoch, [first + i for i in range(self.batch)]

    def index(self, domain: str, epoch: int, pos: int) -> int:
        size = self.size_a if domain == "A" else self.size_b
        cycle, i = divmod(pos, size)
        if not self.shuffle:
            return i
        return int(_permutation(self.seed, domain, epoch, cycle, size)[i])

    def sample_seed(self, domain: str, epoch: int, pos: int) -> int:
        """Seed of the augmentation of one sample: a function of (seed, domain, epoch, position) only,
        so the same whichever rank, worker or accumulation slot reads it."""
        return mix(self.seed, 1 if domain == "A" else 2, epoch, pos)


@lru_cache(maxsize=16)
def _permutation(seed: int, domain: str, epoch: int, cycle: int, size: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(mix(seed, 3 if domain == "A" else 4, epoch, cycle))
    return torch.randperm(size, generator=g)


def mix(*values: int) -> int:
    """A stable 63-bit hash of integers (splitmix64 steps), the same in every process."""
    h = 0x9E3779B97F4A7C15
    for v in values:
        h = (h ^ (v & 0xFFFF_FFFF_FFFF_FFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFF_FFFF_FFFF_FFFF
        h = (h ^ (h >> 31)) * 0x94D049BB133111EB & 0xFFFF_FFFF_FFFF_FFFF
        h ^= h >> 29
    return h & 0x7FFF_FFFF_FFFF_FFFF
