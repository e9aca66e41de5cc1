"""cgx.data.plan: which images each rank takes at each step, as a pure function of (seed, epoch, position)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import pytest

from cgx.data.plan import Plan, mix


def epoch_positions(plan: Plan, epoch: int = 0) -> list[int]:
    """All positions taken in one epoch, over every rank and step."""
    out = []
    for s in range(plan.steps_per_epoch):
        for r in range(plan.world):
            e, pos = plan.positions(epoch * plan.steps_per_epoch + s, r)
            assert e == epoch
            out += pos
    return out


@pytest.mark.parametrize("a, b", [(10, 7), (7, 10), (5, 5), (1, 9)])
def test_epoch_length_is_the_larger_domain(a, b):
    assert Plan(a, b, world=1, batch=1, seed=0).epoch_length == max(a, b)


@pytest.mark.parametrize("length, world, batch, steps", [
    (12, 1, 1, 12), (12, 2, 3, 2), (13, 2, 3, 2), (17, 4, 2, 2), (5, 2, 2, 1), (3, 2, 2, 1), (1, 8, 4, 1),
])
def test_steps_per_epoch(length, world, batch, steps):
    plan = Plan(length, 2, world=world, batch=batch, seed=0)
    assert plan.steps_per_epoch == steps == max(1, length // (world * batch))


def test_rank_positions_layout():
    plan = Plan(24, 10, world=3, batch=2, seed=0)
    assert plan.positions(0, 0) == (0, [0, 1])
    assert plan.positions(0, 1) == (0, [2, 3])
    assert plan.positions(0, 2) == (0, [4, 5])
    assert plan.positions(1, 0) == (0, [6, 7])
    assert plan.positions(3, 2) == (0, [22, 23])
    assert plan.positions(4, 0) == (1, [0, 1])  # next epoch starts over
    assert plan.positions(9, 1) == (2, [8, 9])


@pytest.mark.parametrize("world, batch", [(1, 1), (2, 1), (2, 3), (4, 2), (3, 4)])
def test_each_position_once_and_each_a_image_once(world, batch):
    size_a = world * batch * 5
    plan = Plan(size_a, 4, world=world, batch=batch, seed=3)
    assert plan.epoch_length == size_a
    for epoch in range(2):
        positions = epoch_positions(plan, epoch)
        assert sorted(positions) == list(range(size_a))
        used_a = [plan.index("A", epoch, p) for p in positions]
        assert sorted(used_a) == list(range(size_a))


def test_tail_that_does_not_fill_a_step_is_dropped():
    plan = Plan(23, 5, world=2, batch=3, seed=0)  # 3 steps of 6 positions, 5 dropped
    positions = epoch_positions(plan)
    assert sorted(positions) == list(range(18))


@pytest.mark.parametrize("size_b", [1, 3, 7, 10, 16])
def test_smaller_domain_is_cycled_evenly(size_b):
    length = 16
    plan = Plan(length, size_b, world=2, batch=2, seed=11)
    counts = Counter(plan.index("B", 0, p) for p in epoch_positions(plan))
    assert set(counts) <= set(range(size_b))
    lo, hi = length // size_b, -(-length // size_b)
    for i in range(size_b):
        assert lo <= counts[i] <= hi, (i, counts)
    # and each full cycle is a permutation of domain B
    for c in range(length // size_b):
        cycle = [plan.index("B", 0, p) for p in range(c * size_b, (c + 1) * size_b)]
        assert sorted(cycle) == list(range(size_b))


def test_smaller_domain_a_is_cycled_too():
    plan = Plan(4, 10, world=1, batch=2, seed=0)
    counts = Counter(plan.index("A", 0, p) for p in epoch_positions(plan))
    assert sorted(counts.values()) == [2, 2, 3, 3]


def test_cycles_use_fresh_permutations():
    plan = Plan(60, 20, world=1, batch=1, seed=0)
    cycles = [[plan.index("B", 0, p) for p in range(c * 20, (c + 1) * 20)] for c in range(3)]
    assert cycles[0] != cycles[1] and cycles[1] != cycles[2]


def test_permutations_differ_between_epochs_and_seeds():
    plan = Plan(20, 20, world=1, batch=1, seed=0)
    by_epoch = [[plan.index("A", e, p) for p in range(20)] for e in range(3)]
    assert by_epoch[0] != by_epoch[1] != by_epoch[2]
    assert by_epoch[0] != list(range(20))  # shuffled
    other_seed = Plan(20, 20, world=1, batch=1, seed=1)
    assert [other_seed.index("A", 0, p) for p in range(20)] != by_epoch[0]
    # A and B are shuffled independently
    assert [plan.index("B", 0, p) for p in range(20)] != by_epoch[0]


def test_no_shuffle_is_in_order():
    plan = Plan(6, 4, world=1, batch=1, seed=0, shuffle=False)
    assert [plan.index("A", 3, p) for p in range(6)] == [0, 1, 2, 3, 4, 5]
    assert [plan.index("B", 3, p) for p in range(6)] == [0, 1, 2, 3, 0, 1]


def test_index_is_a_pure_function():
    a = Plan(13, 5, world=2, batch=2, seed=42)
    b = Plan(13, 5, world=2, batch=2, seed=42)
    grid = [(d, e, p) for d in "AB" for e in range(3) for p in range(13)]
    first = [a.index(*k) for k in grid]
    assert [b.index(*k) for k in reversed(grid)] == first[::-1]  # order of calls does not matter
    assert [a.index(*k) for k in grid] == first


def test_sample_seeds_differ_per_sample_domain_and_epoch():
    plan = Plan(10, 10, world=2, batch=1, seed=0)
    seeds = [plan.sample_seed(d, e, p) for d in "AB" for e in range(3) for p in range(10)]
    assert len(set(seeds)) == len(seeds)
    assert all(0 <= s < 2**63 for s in seeds)
    assert plan.sample_seed("A", 1, 4) == Plan(99, 1, world=8, batch=4, seed=0).sample_seed("A", 1, 4)
    assert plan.sample_seed("A", 1, 4) != Plan(10, 10, world=2, batch=1, seed=1).sample_seed("A", 1, 4)


def test_mix_is_order_sensitive_and_masks_large_values():
    assert mix(1, 2) != mix(2, 1)
    assert mix(0) != mix(0, 0)
    assert mix(-1) == mix(2**64 - 1)
    assert 0 <= mix(-5, 2**70) < 2**63


CHILD = """
import json, sys
from cgx.data.plan import Plan, mix
plan = Plan(13, 5, world=2, batch=2, seed=7)
print(json.dumps({
    "index": [plan.index(d, e, p) for d in "AB" for e in range(2) for p in range(13)],
    "seed": [plan.sample_seed(d, e, p) for d in "AB" for e in range(2) for p in range(13)],
    "mix": [mix(1, 2, 3), mix(7), hash("A")],
}))
"""


@pytest.mark.multiprocess
def test_deterministic_across_processes():
    """Python's hash() of strings differs per process; the plan must not depend on it."""
    plan = Plan(13, 5, world=2, batch=2, seed=7)
    here = {
        "index": [plan.index(d, e, p) for d in "AB" for e in range(2) for p in range(13)],
        "seed": [plan.sample_seed(d, e, p) for d in "AB" for e in range(2) for p in range(13)],
        "mix": [mix(1, 2, 3), mix(7)],
    }
    hash_seed = "54321" if os.environ.get("PYTHONHASHSEED") == "12345" else "12345"
    env = {**os.environ, "PYTHONHASHSEED": hash_seed, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    child = json.loads(proc.stdout.strip().splitlines()[-1])
    assert child["mix"][2] != hash("A"), "the child's str hash should differ from ours"
    assert child["index"] == here["index"]
    assert child["seed"] == here["seed"]
    assert child["mix"][:2] == here["mix"]


@pytest.mark.parametrize("size_a, size_b", [(8, 5), (9, 12)])
def test_two_ranks_batch_one_equal_one_rank_batch_two(size_a, size_b):
    two = Plan(size_a, size_b, world=2, batch=1, seed=5)
    one = Plan(size_a, size_b, world=1, batch=2, seed=5)
    assert two.steps_per_epoch == one.steps_per_epoch
    for step in range(3 * one.steps_per_epoch):
        e1, pos1 = one.positions(step, 0)
        e0, p0 = two.positions(step, 0)
        e_, p1 = two.positions(step, 1)
        assert e0 == e_ == e1
        assert p0 + p1 == pos1
        for d in "AB":
            assert [two.index(d, e0, p) for p in p0 + p1] == [one.index(d, e1, p) for p in pos1]
            assert [two.sample_seed(d, e0, p) for p in p0 + p1] == [one.sample_seed(d, e1, p) for p in pos1]


def test_resume_anywhere_continues_exactly():
    def batches(plan: Plan, steps: range) -> list:
        out = []
        for s in steps:
            for r in range(plan.world):
                epoch, pos = plan.positions(s, r)
                out.append((epoch, [(plan.index("A", epoch, p), plan.index("B", epoch, p)) for p in pos]))
        return out

    full = batches(Plan(11, 6, world=2, batch=2, seed=9), range(10))
    resumed = batches(Plan(11, 6, world=2, batch=2, seed=9), range(6, 10))
    assert resumed == full[6 * 2:]
    assert {e for e, _ in full} == {0, 1, 2, 3, 4}  # spans epochs (2 steps each)
