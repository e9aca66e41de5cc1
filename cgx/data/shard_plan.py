"""Which shard samples each loader stream reads, as a pure function of (seed, domain, epoch, stream, position).

A *stream* is what one virtual rank reads: ``streams = global_batch / batch``, where virtual rank
``v = rank * accumulation + slot`` reads accumulation slot ``slot`` of ``rank``
(``cgx.data.shards.worker_steps``; without accumulation, the rank). The loader workers of a rank
share its streams (each decodes its own micro-batches), so nothing here depends on them. Each domain (A, B) is planned on its own, from the sample counts of
its shards (the index that ``cgx shards`` writes):

1. **Shard order.** Every epoch the domain's shard list is permuted with a generator seeded by
   (seed, domain, epoch), identically on every rank, *before* it is split, so no two streams ever
   read the same sample of an epoch's pass.
2. **Split.** The permuted shards are laid end to end (``total`` samples) and stream ``u`` takes
   the contiguous range ``[u * total // streams, (u + 1) * total // streams)`` as a list of
   *parts* (shard, first sample, end). Every stream gets the same number of samples, give or take
   one, however unevenly the shards divide; when the shard count is a multiple of ``streams`` and
   the shards are of equal size, the ranges fall on shard boundaries and each stream reads whole
   shards. A range that starts inside a shard reads (but does not decode) that shard's earlier
   samples. A domain with fewer samples than streams gives an empty range; such a stream reads the
   whole domain instead (its samples then repeat across streams).
3. **Passes.** A stream that needs more samples than its range holds (always the smaller domain,
   which is cycled to the epoch length of the larger one) continues with pass 1, 2, ... of the same
   range, its parts re-ordered and re-shuffled per pass.
4. **Sample shuffle.** Each pass is cut into consecutive windows of ``window`` samples (the
   shuffle buffer); each window is permuted with a generator seeded by (seed, domain, epoch,
   stream, pass, window). Unlike a reservoir buffer, a window can be located without reading what
   came before it: resuming at position ``n`` skips whole parts by count and reads only from the
   start of ``n``'s window.

So the sample at any position of any stream is known without reading data (``sample_at``), and a
resumed run continues exactly where it stopped, while the next epoch reshuffles as it would have.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import torch

from .plan import mix

# Tags that keep the seeds of the different random choices apart (and apart from cgx.data.plan's).
_TAG_SHARDS, _TAG_PASS, _TAG_WINDOW, _TAG_AUGMENT = 0x5348_4152, 0x5041_5353, 0x5749_4E44, 0x4155_474D


@dataclass(frozen=True)
class Part:
    """Samples ``[start, stop)`` (positions inside the shard) of shard number ``shard``."""

    shard: int
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class DomainPlan:
    counts: tuple[int, ...]
    """Samples per shard, in the order of the domain's URL list."""
    streams: int
    """Virtual ranks: global batch / micro-batch."""
    seed: int = 0
    domain: int = 1
    """1 for A, 2 for B."""
    window: int = 1000
    """Shuffle window (samples); 0 or 1: no sample shuffle."""
    shuffle: bool = True
    """False: shards in URL order, samples in shard order (passes and windows included)."""

    @property
    def total(self) -> int:
        return sum(self.counts)

    def shard_order(self, epoch: int) -> tuple[int, ...]:
        if not self.shuffle:
            return tuple(range(len(self.counts)))
        return _permutation(len(self.counts), mix(self.seed, _TAG_SHARDS, self.domain, epoch))

    def parts(self, epoch: int, stream: int, pass_: int = 0) -> tuple[Part, ...]:
        """The parts stream ``stream`` reads in pass ``pass_`` of ``epoch``, in reading order."""
        base = _own_parts(self, epoch, stream)
        if pass_ == 0 or not self.shuffle or len(base) < 2:
            return base
        order = _permutation(len(base), mix(self.seed, _TAG_PASS, self.domain, epoch, stream, pass_))
        return tuple(base[i] for i in order)

    def pass_length(self, epoch: int, stream: int) -> int:
        return sum(len(p) for p in _own_parts(self, epoch, stream))

    def window_order(self, epoch: int, stream: int, pass_: int, window: int, size: int) -> tuple[int, ...]:
        """The permutation of the ``size`` samples of one window: output i is raw sample order[i]."""
        if not self.shuffle or self.window <= 1:
            return tuple(range(size))
        return _permutation(size, mix(self.seed, _TAG_WINDOW, self.domain, epoch, stream, pass_, window))

    @property
    def window_size(self) -> int:
        return max(1, self.window)

    def locate(self, epoch: int, stream: int, pos: int) -> tuple[int, int]:
        """(pass, index of the raw sample within that pass) at position ``pos`` of the stream."""
        n = self.pass_length(epoch, stream)
        p, o = divmod(pos, n)
        w = self.window_size
        start = o // w * w
        order = self.window_order(epoch, stream, p, o // w, min(w, n - start))
        return p, start + order[o - start]

    def sample_at(self, epoch: int, stream: int, pos: int) -> tuple[int, int]:
        """(shard number, sample position in the shard) at position ``pos`` of the stream."""
        p, i = self.locate(epoch, stream, pos)
        for part in self.parts(epoch, stream, p):
            if i < len(part):
                return part.shard, part.start + i
            i -= len(part)
        raise AssertionError("unreachable: locate() stays inside the pass")

    def augment_seed(self, epoch: int, stream: int, pos: int) -> int:
        """Seed of the augmentation at one position: the same before and after a resume."""
        return mix(self.seed, _TAG_AUGMENT, self.domain, epoch, stream, pos)


@lru_cache(maxsize=64)
def _own_parts(plan: DomainPlan, epoch: int, stream: int) -> tuple[Part, ...]:
    counts, total = plan.counts, plan.total
    lo, hi = stream * total // plan.streams, (stream + 1) * total // plan.streams
    if lo == hi:  # fewer samples than streams: this one reads the whole domain
        lo, hi = 0, total
    parts, at = [], 0
    for s in plan.shard_order(epoch):
        a, b = max(lo, at), min(hi, at + counts[s])
        if a < b:
            parts.append(Part(s, a - at, b - at))
        at += counts[s]
        if at >= hi:
            break
    return tuple(parts)


@lru_cache(maxsize=256)
def _permutation(n: int, seed: int) -> tuple[int, ...]:
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randperm(n, generator=g).tolist())
