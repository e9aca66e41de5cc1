"""cgx.data.shards: folder -> shards -> loader round trips, ranks x workers, resume, corrupt and missing data."""
from __future__ import annotations

import json
import logging
import random
import tarfile
from collections import Counter
from pathlib import Path

import pytest
import torch

from cgx.config import ConfigError, DataConfig, config_from_dict
from cgx.data import build_source
from cgx.data.demo import render
from cgx.data.images import DataError
from cgx.data.shard_writer import write_shards

SIZE_A, SIZE_B = 24, 16


def make_images(folder: Path, domain: str, n: int, size=(40, 34)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        render(domain, random.Random(f"{domain}{i}"), 40).resize(size).save(folder / f"{domain.lower()}{i:03d}.jpg",
                                                                            quality=90)


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("images")
    make_images(root / "trainA", "A", SIZE_A)
    make_images(root / "trainB", "B", SIZE_B)
    return root


@pytest.fixture(scope="module", params=[6, 5], ids=["even", "uneven"])
def shards(request, images, tmp_path_factory) -> Path:
    """even: A in 4 shards of 6; uneven: A in 5,5,5,5,4 (B: 6,6,4 / 5,5,5,1)."""
    out = tmp_path_factory.mktemp(f"shards{request.param}")
    write_shards(images, out, max_count=request.param, workers=1, progress=False)
    return out


def pattern(shards: Path, name: str) -> str:
    n = len(json.loads((shards / f"{name}.json").read_text())["shards"])
    return f"{shards}/{name}-{{000000..{n - 1:06d}}}.tar"


def data_cfg(shards: Path, **kw) -> DataConfig:
    base = dict(source="shards", shards_a=pattern(shards, "trainA"), shards_b=pattern(shards, "trainB"),
                load_size=36, crop_size=32, workers=0, shuffle_buffer=8)
    return DataConfig(**{**base, **kw})


def run(cfg: DataConfig, start: int, stop: int, *, batch=1, rank=0, world=1, seed=0) -> list[dict]:
    source = build_source(cfg, batch=batch, rank=rank, world=world, seed=seed)
    return list(source.batches(start, stop))


def keys(batches: list[dict], domain: str = "A") -> list[str]:
    return [k for b in batches for k in b["keys"][domain]]


def shard_keys(shards: Path, urls: tuple[str, ...]) -> dict[tuple[int, int], str]:
    out = {}
    for s, url in enumerate(urls):
        with tarfile.open(url) as t:
            for i, name in enumerate(t.getnames()):
                out[s, i] = name.split(".")[0]
    return out


def test_one_rank_every_image_once_per_epoch(shards):
    cfg = data_cfg(shards)
    source = build_source(cfg, batch=2, seed=1)
    assert source.epoch_length == SIZE_A and source.steps_per_epoch == SIZE_A // 2
    batches = run(cfg, 0, 2 * source.steps_per_epoch, batch=2, seed=1)
    assert batches[0]["A"].shape == (2, 3, 32, 32) and batches[0]["A"].dtype == torch.float32
    assert -1 <= batches[0]["A"].min() and batches[0]["A"].max() <= 1
    epochs = [batches[:12], batches[12:]]
    for epoch in epochs:
        assert sorted(keys(epoch)) == sorted(f"a{i:03d}" for i in range(SIZE_A))
        b = Counter(keys(epoch, "B"))  # the smaller domain is cycled: each once or twice
        assert set(b) == {f"b{i:03d}" for i in range(SIZE_B)} and set(b.values()) <= {1, 2}
        assert all(x["skipped"] == 0 for x in epoch)
    assert keys(epochs[0]) != keys(epochs[1])  # reshuffled


def test_two_ranks_two_workers_every_image_once_and_equal_steps(shards):
    cfg = data_cfg(shards, workers=2)
    steps = {build_source(cfg, batch=1, rank=r, world=2).steps_per_epoch for r in range(2)}
    assert steps == {SIZE_A // 2}
    seen, counts = [], []
    for rank in range(2):
        batches = run(cfg, 0, SIZE_A // 2, rank=rank, world=2)
        counts.append(len(batches))
        assert [b["step"] for b in batches] == list(range(SIZE_A // 2))  # in step order across workers
        seen += keys(batches)
    assert counts == [SIZE_A // 2] * 2
    assert sorted(seen) == sorted(f"a{i:03d}" for i in range(SIZE_A))


@pytest.mark.parametrize("world, workers", [(3, 1), (2, 3)])
def test_equal_steps_whatever_the_shard_split(shards, world, workers):
    """7 or 6 streams over 4-5 shards: every rank still takes exactly steps_per_epoch steps."""
    cfg = data_cfg(shards, workers=workers)
    spe = build_source(cfg, batch=1, rank=0, world=world).steps_per_epoch
    assert spe == SIZE_A // world
    for rank in range(world):
        assert len(run(cfg, 0, spe + 1, rank=rank, world=world)) == spe + 1


def test_loader_follows_the_plan(shards):
    """Keys of 2 ranks x 2 workers x batch 2 are exactly the plan's sample_at, step by step."""
    cfg = data_cfg(shards, workers=2)
    for rank in range(2):
        source = build_source(cfg, batch=2, rank=rank, world=2, seed=5)
        by_index = {d: shard_keys(shards, source.domains[d].urls) for d in "AB"}
        spe = source.steps_per_epoch
        for b in source.batches(0, 2 * spe + 1):
            epoch, t = divmod(b["step"], spe)
            u, first = rank, t * 2  # a stream per rank, whatever the workers
            for d in "AB":
                want = [by_index[d][source.plans[d].sample_at(epoch, u, first + i)] for i in range(2)]
                assert b["keys"][d] == want


def test_the_same_batches_whatever_the_loader_workers(shards):
    """data.workers is the machine's choice, not the run's: 0, 1, 2 and 3 workers read the same samples,
    augmented the same, in every step of two epochs and a resume mid-epoch."""
    runs = {w: run(data_cfg(shards, workers=w), 0, 30, batch=2, seed=4) for w in (0, 1, 2, 3)}
    resumed = run(data_cfg(shards, workers=3), 7, 30, batch=2, seed=4)
    for w, batches in [*runs.items(), ("resumed", [None] * 7 + resumed)]:
        for a, b in list(zip(runs[0], batches))[7 if w == "resumed" else 0:]:
            assert a["step"] == b["step"] and a["keys"] == b["keys"], w
            assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]), w


@pytest.mark.parametrize("workers, start", [(0, 5), (2, 7), (2, 12)])
def test_resume_continues_the_stream_exactly(shards, workers, start):
    cfg = data_cfg(shards, workers=workers)
    full = run(cfg, 0, 30, batch=2, seed=3)  # 2.5 epochs of 12 steps
    resumed = run(cfg, start, 30, batch=2, seed=3)
    assert [b["step"] for b in resumed] == list(range(start, 30))
    for a, b in zip(full[start:], resumed):
        assert a["keys"] == b["keys"]
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"])  # same augmentation
    assert keys(full[:12]) != keys(full[12:24]) and sorted(keys(full[:12])) == sorted(keys(full[12:24]))


def test_augmentation_modes(shards):
    cfg = data_cfg(shards, preprocess="scale_width_and_crop", load_size=40, crop_size=32, flip=False)
    b = run(cfg, 0, 1)[0]
    assert b["A"].shape == (1, 3, 32, 32)


@pytest.mark.multiprocess  # pipe: URLs run `cat`
def test_pipe_urls_with_an_index(shards):
    cfg = data_cfg(shards)
    local = run(cfg, 0, 6)
    piped = data_cfg(shards, shards_a="pipe:cat " + pattern(shards, "trainA"), index_a=str(shards / "trainA.json"))
    assert keys(run(piped, 0, 6)) == keys(local)
    with pytest.raises(DataError, match="data.index_a must name"):
        build_source(data_cfg(shards, shards_a="pipe:cat " + pattern(shards, "trainA")), batch=1)


# --- corrupt and missing data ------------------------------------------------------------------------


def write_shard(path: Path, samples: list[tuple[str, bytes]]) -> dict:
    import webdataset as wds

    with wds.TarWriter(str(path), encoder=False, mtime=0) as w:
        for key, data in samples:
            w.write({"__key__": key, "jpg": data})
    return {"name": path.name, "count": len(samples), "bytes": path.stat().st_size}


@pytest.fixture
def corrupt_shards(images, tmp_path) -> Path:
    """Domain A: 2 shards of 6, a truncated JPEG (a002) and garbage (a008); domain B as written by cgx shards."""
    files = sorted((images / "trainA").iterdir())[:12]
    samples = [(f.stem, f.read_bytes()) for f in files]
    samples[2] = (samples[2][0], samples[2][1][:300])
    samples[8] = (samples[8][0], b"\xff\xd8\xff garbage")
    index = [write_shard(tmp_path / f"trainA-{i:06d}.tar", samples[6 * i: 6 * i + 6]) for i in range(2)]
    (tmp_path / "trainA.json").write_text(json.dumps({"shards": index, "total": 12}))
    write_shards(images / "trainB", tmp_path, max_count=6, workers=1, progress=False)
    return tmp_path


def test_corrupt_samples_are_skipped_and_counted(corrupt_shards, caplog):
    cfg = data_cfg(corrupt_shards, shards_a=f"{corrupt_shards}/trainA-{{000000..000001}}.tar",
                   shards_b=pattern(corrupt_shards, "trainB"))
    with caplog.at_level(logging.WARNING, logger="cgx.data"):
        batches = run(cfg, 0, 16)  # one epoch (|B| = 16 > |A| = 12: A is cycled)
    seen = set(keys(batches))
    assert "a002" not in seen and "a008" not in seen
    assert seen == {f"a{i:03d}" for i in range(12)} - {"a002", "a008"}
    plan = build_source(cfg, batch=1).plans["A"]
    corrupt_positions = [p for p in range(16) if plan.sample_at(0, 0, p) in {(0, 2), (1, 2)}]
    assert len(corrupt_positions) >= 2  # each corrupt sample once in pass 0, maybe again in pass 1
    assert [p for p, b in enumerate(batches) if b["skipped"]] == corrupt_positions
    assert "a002" in caplog.text and "a008" in caplog.text
    resumed = run(cfg, 5, 16)  # a resume sees the same stand-ins
    assert [b["keys"] for b in resumed] == [b["keys"] for b in batches[5:]]
    with pytest.raises(DataError, match="corrupt sample 'a00[28]'"):
        run(DataConfig(**{**cfg.__dict__, "on_corrupt": "raise"}), 0, 16)


def test_truncated_shard_counts_its_missing_samples(corrupt_shards):
    shard = corrupt_shards / "trainB-000000.tar"
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    index = json.loads((corrupt_shards / "trainB.json").read_text())
    for s in index["shards"]:
        s.pop("bytes")  # (with sizes in the index a changed shard is refused at start)
    (corrupt_shards / "trainB.json").write_text(json.dumps(index))
    cfg = data_cfg(corrupt_shards, shards_a=pattern(corrupt_shards, "trainB"), shards_b=pattern(corrupt_shards, "trainB"),
                   shuffle_buffer=0)
    batches = run(cfg, 0, 16)
    assert len(batches) == 16 and sum(b["skipped"] for b in batches) >= 2
    assert len(set(keys(batches))) < 16


def test_start_errors(shards, tmp_path):
    a, b = pattern(shards, "trainA"), pattern(shards, "trainB")
    cases = [
        (dict(shards_a=f"{shards}/trainA-{{000000..000009}}.tar"), r"trainA-00000[45].tar' is not in the index"),
        (dict(shards_a=f"{shards}/nothing-*.tar"), "matches no file"),
        (dict(shards_a=f"{tmp_path}/trainA-{{000000..000001}}.tar"), "shard index not found"),
        (dict(shards_b=b, index_b=str(tmp_path / "none.json")), "shard index not found"),
    ]
    for kw, message in cases:
        with pytest.raises(DataError, match=message):
            build_source(data_cfg(shards, **kw), batch=1)
    # a shard listed in the index but missing on disk
    copy = tmp_path / "copy"
    copy.mkdir()
    for p in shards.iterdir():
        (copy / p.name).write_bytes(p.read_bytes())
    (copy / "trainA-000001.tar").unlink()
    with pytest.raises(DataError, match="shard not found: .*trainA-000001.tar"):
        build_source(data_cfg(copy), batch=1)
    # an empty domain
    (copy / "empty-000000.tar").write_bytes(b"")
    (copy / "empty.json").write_text(json.dumps({"shards": [{"name": "empty-000000.tar", "count": 0}]}))
    with pytest.raises(DataError, match="domain A is empty"):
        build_source(data_cfg(copy, shards_a=f"{copy}/empty-000000.tar"), batch=1)


def test_recipe_needs_shard_urls():
    with pytest.raises(ConfigError, match="data.shards_b must be set"):
        config_from_dict({"data": {"source": "shards", "shards_a": "x-{0..1}.tar"}})
    with pytest.raises(ConfigError, match="data.on_corrupt"):
        config_from_dict({"data": {"on_corrupt": "ignore"}})
    cfg = config_from_dict({"data": {"source": "shards", "shards_a": "a.tar", "shards_b": "b.tar"}}).data
    assert (cfg.shuffle_buffer, cfg.on_corrupt, cfg.index_a) == (1000, "skip", None)
