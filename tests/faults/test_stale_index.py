"""Case 7: a shard index whose counts do not match the tars never shrinks the data set silently."""
from __future__ import annotations

import json
import logging
import random
import shutil

import pytest

from cgx.config import DataConfig
from cgx.data import build_source
from cgx.data.demo import render
from cgx.data.images import DataError
from cgx.data.shard_writer import write_shards


@pytest.fixture
def shards(tmp_path):
    """trainA: 2 shards of 4 (8 images); trainB: 1 shard of 4."""
    for d, n in (("A", 8), ("B", 4)):
        (tmp_path / "src" / f"train{d}").mkdir(parents=True)
        for i in range(n):
            render(d, random.Random(f"{d}{i}"), 32).save(tmp_path / "src" / f"train{d}" / f"{d}{i}.png")
    out = tmp_path / "shards"
    write_shards(tmp_path / "src", out, max_count=4, workers=1, progress=False)
    return out


def edit_index(path, count_of_first: int) -> None:
    """Set the first shard's count (sizes dropped, as for remote shards, which have none to check)."""
    index = json.loads(path.read_text())
    index["shards"][0]["count"] = count_of_first
    for s in index["shards"]:
        s.pop("bytes")
    path.write_text(json.dumps(index))


def cfg(shards, **kw) -> DataConfig:
    base = dict(source="shards", shards_a=f"{shards}/trainA-{{000000..000001}}.tar",
                shards_b=f"{shards}/trainB-000000.tar", preprocess="none", crop_size=32, load_size=32,
                flip=False, shuffle_buffer=0, workers=0)
    return DataConfig(**{**base, **kw})


@pytest.mark.parametrize("on_corrupt", ["skip", "raise"])
@pytest.mark.parametrize("workers", [0, 1])
def test_index_lower_than_the_shard_holds_is_an_error(shards, on_corrupt, workers):
    edit_index(shards / "trainA.json", 2)  # trainA-000000.tar holds 4
    source = build_source(cfg(shards, on_corrupt=on_corrupt, workers=workers), batch=1)
    assert source.epoch_length == 6  # what the stale index claims
    with pytest.raises(DataError) as e:
        list(source.batches(0, source.steps_per_epoch))
    message = str(e.value)
    assert "\n" not in message, message
    assert "trainA-000000.tar holds 4 samples, its index says 2" in message


def test_index_higher_than_the_shard_holds_follows_on_corrupt(shards, caplog):
    edit_index(shards / "trainA.json", 6)  # trainA-000000.tar holds 4: positions 4, 5 do not exist
    with caplog.at_level(logging.WARNING, logger="cgx.data"):
        batches = list(build_source(cfg(shards), batch=1).batches(0, 10))
    assert sum(b["skipped"] for b in batches) == 2
    assert "the shard ends after 4 samples, its index says 6" in caplog.text
    with pytest.raises(DataError, match="the shard ends after 4 samples, its index says 6"):
        list(build_source(cfg(shards, on_corrupt="raise"), batch=1).batches(0, 10))


def test_a_correct_index_reads_every_sample_once_per_epoch(shards):
    batches = list(build_source(cfg(shards), batch=1).batches(0, 8))
    assert sorted(k for b in batches for k in b["keys"]["A"]) == [f"A{i}" for i in range(8)]
    assert sum(b["skipped"] for b in batches) == 0


def test_a_changed_local_shard_is_refused_at_start(shards, tmp_path):
    """With sizes in the index (as `cgx shards` writes them), a rewritten shard is refused before step 1."""
    shutil.copy(shards / "trainA-000001.tar", shards / "trainA-000000.tar")
    index = json.loads((shards / "trainA.json").read_text())
    if index["shards"][0]["bytes"] == index["shards"][1]["bytes"]:
        index["shards"][0]["bytes"] += 512
        (shards / "trainA.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match="the index is stale"):
        build_source(cfg(shards), batch=1)
