"""cgx shards: folders -> WebDataset shards + index; deterministic, atomic, skips unreadable images."""
from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
from PIL import Image

from cgx.cli import main as cli_main
from cgx.data import shard_writer
from cgx.data.images import DataError
from cgx.data.shard_writer import parse_size, write_shards


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def members(tar: Path) -> list[str]:
    with tarfile.open(tar) as t:
        return t.getnames()


def test_authors_layout_one_shard_set_per_split(demo_data, tmp_path):
    results = write_shards(demo_data, tmp_path, max_count=3, workers=1, progress=False)
    assert [r.name for r in results] == ["testA", "testB", "trainA", "trainB"]
    index = json.loads((tmp_path / "trainA.json").read_text())
    assert index["total"] == 8 and index["skipped"] == []
    assert [(s["name"], s["count"]) for s in index["shards"]] == [
        ("trainA-000000.tar", 3), ("trainA-000001.tar", 3), ("trainA-000002.tar", 2)]
    assert all(s["bytes"] == (tmp_path / s["name"]).stat().st_size for s in index["shards"])
    assert members(tmp_path / "trainA-000000.tar") == ["a_00000.png", "a_00001.png", "a_00002.png"]
    # original bytes are kept
    with tarfile.open(tmp_path / "trainA-000001.tar") as t:
        assert t.extractfile("a_00003.png").read() == (demo_data / "trainA/a_00003.png").read_bytes()
    assert results[2].pattern(tmp_path) == f"{tmp_path}/trainA-{{000000..000002}}.tar"
    assert not list(tmp_path.glob(".*"))  # no temporary files left


def test_rerun_gives_identical_bytes_with_any_worker_count(demo_data, tmp_path):
    write_shards(demo_data, tmp_path / "one", max_count=3, workers=1, progress=False)
    write_shards(demo_data, tmp_path / "two", max_count=3, workers=2, progress=False)
    write_shards(demo_data, tmp_path / "one", max_count=3, workers=2, progress=False, overwrite=True)  # over the first
    assert checksums(tmp_path / "one") == checksums(tmp_path / "two")


def make_plain_folder(root: Path) -> Path:
    (root / "sub" / "deeper").mkdir(parents=True)
    colors = iter([(200, 10, 10), (10, 200, 10), (10, 10, 200), (90, 90, 90), (250, 250, 0)])
    for rel, fmt in [("x.jpg", "JPEG"), ("sub/y.png", "PNG"), ("sub/deeper/z.webp", "WEBP"),
                     ("w.v2.bmp", "BMP"), ("t.tif", "TIFF")]:
        Image.new("RGB", (40, 30), next(colors)).save(root / rel, fmt)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    (root / "notes.txt").write_text("ignored")
    return root


def test_plain_folder_recursive_skips_unreadable(tmp_path, capsys):
    src = make_plain_folder(tmp_path / "photos")
    assert cli_main(["shards", str(src), str(tmp_path / "out"), "--workers", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "photos: 5 images in 1 shards" in out
    assert "skipped 1 unreadable images" in out and "photos/broken.jpg" in out
    index = json.loads((tmp_path / "out/photos.json").read_text())
    assert index["total"] == 5 and index["skipped"] == ["photos/broken.jpg"]
    assert members(tmp_path / "out/photos-000000.tar") == [
        "sub/deeper/z.webp", "sub/y.png", "t.tif", "w_v2.bmp", "x.jpg"]


def test_resize_and_reencode(tmp_path):
    src = make_plain_folder(tmp_path / "photos")
    write_shards(src, tmp_path / "out", resize=15, workers=1, progress=False, prefix="small")
    with tarfile.open(tmp_path / "out/small-000000.tar") as t:
        names = t.getnames()
        assert all(n.endswith(".jpg") for n in names) and len(names) == 5
        with Image.open(io.BytesIO(t.extractfile(names[0]).read())) as im:
            assert im.format == "JPEG" and im.size == (20, 15)


def test_max_size_rolls_over_before_the_limit(demo_data, tmp_path):
    sizes = [p.stat().st_size for p in sorted((demo_data / "trainB").iterdir())]
    limit = max(sizes) * 2 + 1
    results = write_shards(demo_data / "trainB", tmp_path, max_size=limit, workers=1, progress=False)
    index = json.loads(results[0].index.read_text())
    assert sum(s["count"] for s in index["shards"]) == 8 and len(index["shards"]) >= 4
    for s in index["shards"]:
        with tarfile.open(tmp_path / s["name"]) as t:
            assert sum(m.size for m in t.getmembers()) <= limit


def test_failure_never_leaves_a_shard_under_its_final_name(demo_data, tmp_path, monkeypatch):
    real, calls = shard_writer._prepare, []

    def failing(job):
        calls.append(job)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real(job)

    monkeypatch.setattr(shard_writer, "_prepare", failing)
    with pytest.raises(KeyboardInterrupt):
        write_shards(demo_data / "trainA", tmp_path, max_count=3, workers=1, progress=False)
    # shard 0 was complete; shard 1 was half written and is gone, temp file included; no index
    assert sorted(p.name for p in tmp_path.iterdir()) == ["trainA-000000.tar"]


def test_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        write_shards(tmp_path / "nope", tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        write_shards(tmp_path / "empty", tmp_path / "out", progress=False)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad/a.png").write_bytes(b"nope")
    with pytest.raises(DataError, match="none of its 1 images"):
        write_shards(tmp_path / "bad", tmp_path / "out", progress=False)


def test_parse_size():
    assert parse_size("500MB") == 500_000_000
    assert parse_size("1GiB") == 2**30
    assert parse_size("2e3") == 2000 and parse_size(None) is None
    with pytest.raises(DataError):
        parse_size("lots")


def test_cli_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["shards", "--help"])
    text = capsys.readouterr().out
    for option in ("--max-count", "--max-size", "--resize", "--workers", "trainA/"):
        assert option in text
