"""cgx.data.shard_plan: which shard samples each (rank, worker) stream reads, without reading any data."""
from __future__ import annotations

from collections import Counter

import pytest

from cgx.data.shard_plan import DomainPlan, Part


def epoch_samples(plan: DomainPlan, epoch: int, per_stream: int) -> list[tuple[int, int]]:
    return [plan.sample_at(epoch, u, p) for u in range(plan.streams) for p in range(per_stream)]


@pytest.mark.parametrize("counts, streams", [
    ((6, 6, 6, 6), 4),          # shards divide evenly: whole shards per stream
    ((6, 6, 6, 6), 2),
    ((5, 5, 5, 5, 4), 4),       # uneven shard count and sizes
    ((7, 1, 9, 3), 4),
    ((20,), 4),                 # fewer shards than streams
    ((3, 2), 5),
])
@pytest.mark.parametrize("window", [0, 1, 4, 1000])
def test_each_sample_once_per_epoch_over_all_streams(counts, streams, window):
    plan = DomainPlan(counts, streams, seed=3, window=window)
    total = sum(counts)
    lengths = [plan.pass_length(0, u) for u in range(streams)]
    assert sum(lengths) == total and max(lengths) - min(lengths) <= 1
    every = {(s, i) for s, n in enumerate(counts) for i in range(n)}
    for epoch in range(3):
        seen = [plan.sample_at(epoch, u, p) for u in range(streams) for p in range(plan.pass_length(epoch, u))]
        assert sorted(seen) == sorted(every)


def test_even_shards_are_read_whole():
    plan = DomainPlan((6,) * 8, streams=4, seed=0)
    for u in range(4):
        parts = plan.parts(0, u)
        assert len(parts) == 2 and all(p.start == 0 and p.stop == 6 for p in parts)
    shards = sorted(p.shard for u in range(4) for p in plan.parts(0, u))
    assert shards == list(range(8))


def test_shard_order_is_shuffled_per_epoch_and_seed():
    plan = DomainPlan((4,) * 12, streams=2, seed=0)
    orders = [plan.shard_order(e) for e in range(3)]
    assert len(set(orders)) == 3 and sorted(orders[0]) == list(range(12))
    assert DomainPlan((4,) * 12, streams=2, seed=1).shard_order(0) != orders[0]
    assert DomainPlan((4,) * 12, streams=2, seed=0, domain=2).shard_order(0) != orders[0]
    assert DomainPlan((4,) * 12, streams=2, seed=0, shuffle=False).shard_order(5) == tuple(range(12))


def test_sample_order_differs_between_epochs():
    plan = DomainPlan((6, 6), streams=1, seed=0, window=12)
    by_epoch = [[plan.sample_at(e, 0, p) for p in range(12)] for e in range(3)]
    assert by_epoch[0] != by_epoch[1] != by_epoch[2]
    assert sorted(by_epoch[0]) == sorted(by_epoch[1])


def test_short_stream_cycles_through_reshuffled_passes():
    plan = DomainPlan((3, 3, 3, 3), streams=2, seed=0, window=3)
    n = plan.pass_length(0, 0)
    passes = [[plan.sample_at(0, 0, p * n + i) for i in range(n)] for p in range(3)]
    assert sorted(passes[0]) == sorted(passes[1]) == sorted(passes[2])  # the same range every pass
    assert passes[0] != passes[1] and passes[1] != passes[2]            # in a new order


def test_windows_shuffle_locally():
    plan = DomainPlan((10, 10), streams=1, seed=0, window=5, shuffle=True)
    order = plan.shard_order(0)
    seq = [plan.sample_at(0, 0, p) for p in range(20)]
    flat = [(s, i) for s in order for i in range(10)]
    for w in range(4):  # window w holds exactly raw samples 5w..5w+4, permuted
        assert sorted(seq[5 * w: 5 * w + 5]) == sorted(flat[5 * w: 5 * w + 5])
    assert seq != flat


def test_no_shuffle_reads_in_order():
    plan = DomainPlan((2, 3), streams=1, seed=0, window=100, shuffle=False)
    assert [plan.sample_at(7, 0, p) for p in range(7)] == [(0, 0), (0, 1), (1, 0), (1, 1), (1, 2), (0, 0), (0, 1)]


def test_fewer_samples_than_streams_reads_whole_domain():
    plan = DomainPlan((2,), streams=4, seed=0)
    parts = [plan.parts(0, u) for u in range(4)]
    assert Part(0, 0, 2) in [p[0] for p in parts]
    assert all(plan.pass_length(0, u) >= 1 for u in range(4))


def test_range_split_cuts_inside_shards():
    plan = DomainPlan((5, 5, 5, 5, 4), streams=4, seed=0, shuffle=False)
    assert plan.parts(0, 0) == (Part(0, 0, 5), Part(1, 0, 1))
    assert plan.parts(0, 1) == (Part(1, 1, 5), Part(2, 0, 2))
    assert plan.parts(0, 3) == (Part(3, 3, 5), Part(4, 0, 4))


def test_augment_seeds_unique():
    plan = DomainPlan((4, 4), streams=2, seed=0)
    seeds = [plan.augment_seed(e, u, p) for e in range(3) for u in range(2) for p in range(8)]
    assert len(set(seeds)) == len(seeds)
    assert plan.augment_seed(0, 0, 0) != DomainPlan((4, 4), streams=2, seed=0, domain=2).augment_seed(0, 0, 0)


def test_smaller_domain_cycled_evenly_per_stream():
    plan = DomainPlan((4, 4), streams=2, seed=0, window=8)  # 8 samples, 2 streams; each needs 10
    counts = Counter(epoch_samples(plan, 0, 10))
    assert set(counts) == {(s, i) for s in range(2) for i in range(4)}
    assert set(counts.values()) <= {2, 3}
