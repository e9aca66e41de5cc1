"""The image history buffer (plugins/buffers/image_pool.py)."""
from __future__ import annotations

import pytest
import torch

import cgx.plugins
from cgx_plugins.buffers.image_pool import ImagePool, build_image_pool


def const(value: float, n: int = 1, shape=(3, 4, 4)) -> torch.Tensor:
    """``n`` images whose pixels all equal value, value + 1, ..."""
    return torch.stack([torch.full(shape, float(value + i)) for i in range(n)])


def values(images: torch.Tensor) -> list[float]:
    """The constant of each constant-valued image of a batch."""
    flat = images.reshape(images.shape[0], -1)
    assert (flat == flat[:, :1]).all(), "images are not constant-valued"
    return flat[:, 0].tolist()


def stored(pool: ImagePool) -> list[float]:
    return [v for img in pool.images for v in values(img)]


def test_registered_as_buffer():
    pool = cgx.plugins.create("buffer", "image_pool", size=7)
    assert isinstance(pool, ImagePool) and pool.size == 7 and len(pool) == 0
    assert cgx.plugins.create("buffer", "image_pool").size == 50  # the paper's size


def test_negative_size_raises():
    with pytest.raises(ValueError, match="size"):
        build_image_pool(-1)


def test_size_zero_passes_through():
    pool = build_image_pool(0)
    x = torch.randn(3, 3, 4, 4)
    for _ in range(5):
        out = pool.query(x)
        assert out is x
    assert len(pool) == 0


def test_not_full_stores_and_returns_every_image():
    torch.manual_seed(0)
    pool = build_image_pool(5)
    out = pool.query(const(0, 3))
    assert values(out) == [0, 1, 2]
    assert stored(pool) == [0, 1, 2]
    out = pool.query(const(3, 2))
    assert values(out) == [3, 4]
    assert stored(pool) == [0, 1, 2, 3, 4]


def test_images_of_another_size_are_resized_to_the_size_asked_about():
    """A run resumed with another data.crop_size: the stored images take the new size (their values kept:
    a constant image stays that constant), and the pool is one tensor again in its state."""
    torch.manual_seed(0)
    pool = build_image_pool(3)
    pool.query(const(0, 3, shape=(3, 8, 8)))
    out = pool.query(const(10, 4, shape=(3, 6, 6)))
    assert out.shape == (4, 3, 6, 6) and pool.state_dict()["images"].shape == (3, 3, 6, 6)
    assert sorted(values(out)) != [10, 11, 12, 13]  # some came from the pool
    assert set(values(out)) <= {0, 1, 2, 10, 11, 12, 13}


def test_stored_images_are_copies_and_detached():
    torch.manual_seed(0)
    pool = build_image_pool(2)
    x = const(1, 2).requires_grad_(True)
    out = pool.query(x)
    assert not out.requires_grad
    with torch.no_grad():
        x.add_(100)
    assert stored(pool) == [1, 2]
    out.add_(50)  # nor does changing the returned batch
    assert stored(pool) == [1, 2]


def test_batch_that_fills_the_pool():
    torch.manual_seed(0)
    pool = build_image_pool(3)
    pool.query(const(0, 2))
    out = values(pool.query(const(10, 1 + 40)))
    assert out[0] == 10  # the third slot is still free: stored and returned as is
    assert len(pool) == 3
    assert 10 in stored(pool) or 10 in out[1:]


def test_full_pool_returns_new_or_stored_and_replaces():
    torch.manual_seed(1234)
    size, queries = 4, 400
    pool = build_image_pool(size)
    pool.query(const(0, size))
    model = [0.0, 1.0, 2.0, 3.0]  # slot -> value, kept in step with the pool
    swaps = 0
    for k in range(queries):
        new = 100.0 + k
        (got,) = values(pool.query(const(new)))
        if got == new:
            assert stored(pool) == model  # returned as is: nothing stored
        else:
            assert got in model, f"{got} was never stored"
            slot = model.index(got)
            model[slot] = new  # the returned one is replaced by the new one
            assert stored(pool) == model
            swaps += 1
        assert len(pool) == size
    assert 0.3 < swaps / queries < 0.7, swaps


def test_full_pool_batches_mix_both_cases():
    torch.manual_seed(5)
    pool = build_image_pool(8)
    pool.query(const(0, 8))
    out = values(pool.query(const(1000, 64)))
    fresh = [v for v, new in zip(out, range(1000, 1064)) if v == new]
    old = [v for v in out if v < 1000]
    assert fresh and old
    assert sorted(stored(pool) + out) == sorted(list(range(8)) + list(range(1000, 1064)))  # nothing lost


def test_query_does_not_touch_global_rng():
    torch.manual_seed(0)
    pool = build_image_pool(2)
    pool.query(const(0, 2))
    state = torch.get_rng_state()
    pool.query(const(10, 20))
    assert torch.equal(state, torch.get_rng_state())


def test_seeded_from_global_rng():
    def run(seed):
        torch.manual_seed(seed)
        pool = build_image_pool(3)
        return [values(pool.query(const(i * 10, 2))) for i in range(20)]

    assert run(0) == run(0)
    assert run(0) != run(1)


def feed(pool: ImagePool, n: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [pool.query(torch.randn(2, 3, 4, 4, generator=g)) for _ in range(n)]


@pytest.mark.parametrize("filled", [0, 1, 10], ids=["empty", "partial", "full"])
def test_state_round_trip(tmp_path, filled):
    torch.manual_seed(0)
    pool = build_image_pool(6)
    feed(pool, filled, seed=1)
    path = tmp_path / "pool.pt"
    torch.save(pool.state_dict(), path)
    state = torch.load(path, weights_only=True)

    torch.manual_seed(99)  # a fresh pool with a different generator and no images
    fresh = build_image_pool(6)
    fresh.load_state_dict(state)
    assert len(fresh) == len(pool)
    for a, b in zip(fresh.images, pool.images):
        assert torch.equal(a, b)

    expected, got = feed(pool, 12, seed=2), feed(fresh, 12, seed=2)
    for e, g in zip(expected, got):
        assert torch.equal(e, g)
    # the outputs depend on the restored generator: a pool that was not restored differs
    if filled >= 10:
        torch.manual_seed(99)
        other = build_image_pool(6)
        other.load_state_dict({**state, "rng": torch.Generator().manual_seed(7).get_state()})
        assert any(not torch.equal(e, o) for e, o in zip(expected, feed(other, 12, seed=2)))


def test_state_dict_is_a_snapshot():
    torch.manual_seed(0)
    pool = build_image_pool(2)
    pool.query(const(1, 2))
    state = pool.state_dict()
    pool.query(const(10, 30))
    assert values(state["images"]) == [1, 2]


def test_load_state_of_other_size_raises():
    torch.manual_seed(0)
    pool = build_image_pool(4)
    pool.query(const(0, 4))
    other = build_image_pool(5)
    with pytest.raises(ValueError, match=r"4.*5"):
        other.load_state_dict(pool.state_dict())
    assert len(other) == 0
