"""Hostile shards and indexes (issue 17, case 3): a sample's size is bounded (data.max_sample_bytes,
never read whole), index counts are checked against the shard's size, malformed indexes are one line."""
from __future__ import annotations

import io
import json
import shutil
import tarfile
import tracemalloc

import pytest

from cgx.config import DataConfig
from cgx.data.shards import ShardSource
from cgx.errors import DataError

BIG = 128 * 2**20


def evil_shard(folder, demo_shards, big: int = BIG) -> str:
    """evil-000000.tar.gz: 2 good samples from the demo shards, then one 128 MiB member (zeros: ~128 KiB gzipped)."""
    with tarfile.open(demo_shards / "trainA-000000.tar") as src:
        good = [(m, src.extractfile(m).read()) for m in src.getmembers() if m.isreg()][:2]
    path = folder / "evil-000000.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for m, data in good:
            tar.addfile(m, io.BytesIO(data))
        info = tarfile.TarInfo("zzz_bomb.png")
        info.size = big
        tar.addfile(info, io.BytesIO(bytes(big)))
    (folder / "evil.json").write_text(json.dumps({"shards": [{"name": path.name, "count": len(good) + 1}]}))
    return str(path)


def source(shards_a: str, demo_shards, **data) -> ShardSource:
    cfg = DataConfig(source="shards", shards_a=shards_a, shards_b=str(demo_shards / "trainB-{000000..000002}.tar"),
                     workers=0, load_size=32, crop_size=32, shuffle_buffer=0, **data)
    return ShardSource(cfg, batch=1, shuffle=False)


def test_a_huge_member_is_refused_by_name_without_reading_it(tmp_path, demo_shards):
    url = evil_shard(tmp_path, demo_shards)
    src = source(url, demo_shards, max_sample_bytes=2**20, on_corrupt="raise")
    tracemalloc.start()
    try:
        with pytest.raises(DataError, match=r"zzz_bomb.png is 134217728 bytes, above data.max_sample_bytes=1048576"):
            for _ in src.batches(0, 8):
                pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    # tarfile skips the member in chunks: what one gzip chunk of zeros inflates to, not the member
    assert peak < 48 * 2**20, f"{peak} bytes allocated"


def test_a_huge_member_is_skipped_and_counted(tmp_path, demo_shards):
    url = evil_shard(tmp_path, demo_shards)
    src = source(url, demo_shards, max_sample_bytes=2**20, on_corrupt="skip")
    skipped = sum(b["skipped"] for b in src.batches(0, 6))
    assert skipped >= 1


def write_index(folder, demo_shards, entry: dict) -> str:
    shutil.copy(demo_shards / "trainA-000000.tar", folder / "trainA-000000.tar")
    (folder / "trainA.json").write_text(json.dumps({"shards": [{"name": "trainA-000000.tar", **entry}]}))
    return str(folder / "trainA-000000.tar")


def test_an_index_count_the_shard_cannot_hold_is_refused(tmp_path, demo_shards):
    url = write_index(tmp_path, demo_shards, {"count": 10**6})
    with pytest.raises(DataError, match=r"says .*trainA-000000.tar holds 1000000 samples, but a tar of \d+ bytes "
                                        r"holds at most \d+") as info:
        source(url, demo_shards)
    assert "data.shards_a" in str(info.value) and "trainA.json" in str(info.value)


@pytest.mark.parametrize("entry", [{"count": -3}, {"count": "many"}, {"count": 2.5}, {"count": None}, {},
                                   {"count": True}])
def test_a_malformed_count_is_one_line_naming_the_index(tmp_path, demo_shards, entry):
    url = write_index(tmp_path, demo_shards, entry)
    with pytest.raises(DataError, match=r"must be an integer >= 0") as info:
        source(url, demo_shards)
    msg = str(info.value)
    assert "trainA.json" in msg and "trainA-000000.tar" in msg and "\n" not in msg


@pytest.mark.parametrize("index", ['{"shards": [{"count": 3}]}', '{"shards": 3}', '{"shards": ["x"]}',
                                   '{"shards": [{"name": 7, "count": 3}]}', "[" * 100000, "not json"])
def test_a_malformed_index_is_one_line(tmp_path, demo_shards, index):
    url = write_index(tmp_path, demo_shards, {"count": 3})
    (tmp_path / "trainA.json").write_text(index)
    with pytest.raises(DataError, match=r"is not a shard index written by `cgx shards`") as info:
        source(url, demo_shards)
    assert "\n" not in str(info.value) and len(str(info.value)) < 500


@pytest.mark.parametrize("index", ["[" * 100000, "not json", "[1, 2]"])
def test_a_malformed_paired_index_is_one_line(tmp_path, demo_shards, index):
    """The paired source's own look at the index (is it of paired shards?) leaves a malformed one to the
    index reader's one line: no RecursionError from hostile nesting."""
    from cgx.data import build_source

    url = write_index(tmp_path, demo_shards, {"count": 3})
    (tmp_path / "trainA.json").write_text(index)
    cfg = DataConfig(source="shards", paired=True, shards=url, workers=0, load_size=32, crop_size=32, shuffle_buffer=0)
    with pytest.raises(DataError) as info:
        build_source(cfg, batch=1)
    assert "\n" not in str(info.value) and len(str(info.value)) < 500
