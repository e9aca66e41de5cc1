"""train.global_batch_size: the accumulation it needs on a world size, and the one-line errors."""
from __future__ import annotations

import pytest

from cgx.config import TrainConfig
from cgx.errors import ConfigError
from cgx.train.global_batch import resolve_global_batch


def shared(global_batch=None, step=10, batch=1, world=2):
    meta = {"step": step, "world_size": world, "config": {"train": {"batch_size": batch}}}
    if global_batch is not None:
        meta["data"] = {"global_batch": global_batch, "epoch": 0, "sample": 0}
    return meta


def test_default_is_batch_times_world_and_a_resumed_run_keeps_its_own():
    got = resolve_global_batch(TrainConfig(batch_size=2), 3)
    assert (got.size, got.accumulation, got.changed_from) == (6, 1, None)
    assert resolve_global_batch(TrainConfig(batch_size=1), 1, shared(8)).accumulation == 8
    assert resolve_global_batch(TrainConfig(batch_size=2), 4, shared(8)).accumulation == 1
    assert resolve_global_batch(TrainConfig(batch_size=1), 1, shared(batch=2, world=2)).size == 4  # older checkpoints
    assert resolve_global_batch(TrainConfig(batch_size=2), 2, shared(step=0, world=1)).size == 4  # cgx import: step 0
    changed = resolve_global_batch(TrainConfig(batch_size=1, global_batch_size=16), 2, shared(8))
    assert (changed.accumulation, changed.changed_from) == (8, 8)


@pytest.mark.parametrize("cfg, world, ckpt, says", [
    (TrainConfig(batch_size=2, global_batch_size=6), 2, None,
     "r.yaml: train.global_batch_size=6 is not a multiple of train.batch_size=2 x 2 ranks = 4: set "
     "train.global_batch_size to a multiple of 4, or a train.batch_size that divides it over the ranks; "
     "world sizes that fit batch_size=2: 1, 3"),
    (TrainConfig(batch_size=1), 3, shared(8),
     "r.yaml: train.global_batch_size=8 (unset: the run's own, from its checkpoint) is not a multiple of "
     "train.batch_size=1 x 3 ranks = 3"),
])
def test_a_global_batch_that_does_not_divide_is_one_line_naming_the_keys(cfg, world, ckpt, says):
    with pytest.raises(ConfigError) as e:
        resolve_global_batch(cfg, world, ckpt, "r.yaml")
    assert says in str(e.value) and "\n" not in str(e.value)
