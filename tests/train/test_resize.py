"""State that moves between world sizes (cgx.train.resize): image pools merged and redistributed,
random streams reseeded from (seed, step, rank)."""
from __future__ import annotations

import pytest
import torch

from cgx.train.resize import Buffers, carry_over, resizable
from cgx.train.rng import stream_seed
from cgx_plugins.buffers.image_pool import ImagePool
from cgx_plugins.buffers.none import NoBuffer


def pools_of(ranks: int, size: int, filled: int) -> list[ImagePool]:
    """``ranks`` pools, each holding ``filled`` distinct images: image value = 100 * rank + slot."""
    pools = []
    for r in range(ranks):
        pool = ImagePool(size)
        pool.query(torch.stack([torch.full((1, 2, 2), 100.0 * r + i) for i in range(filled)]))
        pools.append(pool)
    return pools


def ids(pool: ImagePool) -> list[int]:
    return [int(img[0, 0, 0, 0]) for img in pool.images]


def redistribute(old: list[ImagePool], world: int, size: int) -> list[ImagePool]:
    saved = [Buffers([p]).state_dict() for p in old]
    new = [ImagePool(size) for _ in range(world)]
    for rank, pool in enumerate(new):
        carry_over([pool], saved, seed=7, step=10, rank=rank, world_size=world)
    return new


def test_same_world_size_gives_each_rank_its_own_pool_back():
    old = pools_of(3, size=4, filled=4)
    assert [ids(p) for p in redistribute(old, 3, 4)] == [ids(p) for p in old]


def test_shrinking_keeps_full_pools_made_of_every_old_rank():
    old = pools_of(4, size=4, filled=4)
    new = redistribute(old, 2, 4)
    assert [ids(p) for p in new] == [[0, 200, 1, 201], [100, 300, 101, 301]]  # the oldest slots of each rank
    assert [ids(p) for p in redistribute(old, 2, 4)] == [ids(p) for p in new]  # deterministic


def test_growing_carries_every_image_over_once():
    old = pools_of(2, size=4, filled=3)
    new = redistribute(old, 4, 4)
    assert sorted(i for p in new for i in ids(p)) == sorted(i for p in old for i in ids(p))
    assert [len(p) for p in new] == [2, 2, 1, 1]


def test_a_pool_of_another_size_is_refused_by_name():
    saved = [Buffers([p]).state_dict() for p in pools_of(2, size=4, filled=1)]
    with pytest.raises(ValueError, match="rank 0 saved a pool of size 4, recipe asks 3"):
        carry_over([ImagePool(3)], saved, seed=0, step=1, rank=0, world_size=1)


def test_streams_depend_on_seed_step_and_rank_only():
    def draw(saved_ranks: int, rank: int, step: int) -> tuple:
        pool = ImagePool(4)
        saved = [Buffers([p]).state_dict() for p in pools_of(saved_ranks, 4, 2)]
        carry_over([pool], saved, seed=3, step=step, rank=rank, world_size=2)
        return torch.rand(3).tolist(), torch.rand((), generator=pool.generator).item()

    assert draw(4, rank=1, step=8) == draw(1, rank=1, step=8)  # whatever the old rank count
    assert draw(4, rank=1, step=8) != draw(4, rank=0, step=8)
    assert draw(4, rank=1, step=8) != draw(4, rank=1, step=9)
    assert stream_seed(5, 0, 2) == 5 + 1_000_003 * 2  # a fresh run's ranks are seeded as before


class ThirdPartyBuffer:
    """A buffer written before merge_states/load_share existed."""

    def __init__(self) -> None:
        self.held: list[torch.Tensor] = []

    def query(self, images):
        self.held.append(images)
        return images

    def state_dict(self):
        return {"held": len(self.held)}

    def load_state_dict(self, state):
        self.held = [torch.zeros(1)] * state["held"]


def test_a_buffer_without_merge_starts_fresh_and_says_so():
    old = ThirdPartyBuffer()
    old.query(torch.ones(1))
    fresh = ThirdPartyBuffer()
    said = carry_over([fresh], [Buffers([old]).state_dict()], seed=0, step=1, rank=0, world_size=2)
    assert not resizable(fresh) and fresh.held == []
    assert said == "image pools start fresh (the buffer ThirdPartyBuffer has no merge_states/load_share to carry its pool over)"
    assert resizable(NoBuffer()) and resizable(ImagePool(1))
