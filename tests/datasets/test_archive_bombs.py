"""Archive bombs against ``cgx datasets fetch`` (issue 27, case 4): a few KB that unpack to GBs, a
member declaring less than it holds, a sparse tar member, two fetches of one name at once. Each is
refused before writing in one line, or limited as it streams. The bombs run in a child process with
1 GiB of address space and 64 MiB per file (tests/capped.py), so a regression fails the test
instead of filling the machine's memory or the shared disk."""
from __future__ import annotations

import io
import threading
import time
import zipfile
from pathlib import Path

import pytest
from archive_server import ArchiveServer
from bombs import GiB, bzip2_zeros, deflate_zeros, sparse_tar_gz, zip_with_raw
from capped import disk_used, run_cgx_capped
from test_fetch import FACADES, H2Z, facades_tar, h2z_zip, tree

from cgx.datasets import extract
from cgx.datasets.fetch import fetch
from cgx.errors import ArchiveError, UsageError

OK = [("horse2zebra/trainA/ok.jpg", b"fine")]


@pytest.fixture
def server():
    s = ArchiveServer(files={H2Z: h2z_zip(), FACADES: facades_tar()}).start()
    yield s
    s.stop()


def fetch_capped(server, to: Path, name: str = "horse2zebra", *more: str):
    return run_cgx_capped(["datasets", "fetch", name, "--to", str(to), "--url", server.url(), "--no-progress", *more])


def assert_refused(result, tmp_path: Path, *words: str) -> str:
    """One line on stderr naming the archive with ``words``, exit 2, and nothing left on disk."""
    err = result.err.strip()
    assert result.rc == 2 and err.startswith("cgx: error: ") and "\n" not in err, (result.rc, err[-2000:])
    for w in words:
        assert w in err, err
    assert tree(tmp_path / "d") == {}  # no data set, no unpacking folder, no archive, no lock
    return err


@pytest.mark.multiprocess
@pytest.mark.parametrize("declared", ["honest", "small"])
def test_bzip2_zip_bomb_is_refused_before_decompressing(server, tmp_path, declared):
    """6 KB of bzip2 that unpack to ~4 GiB (zipfile decompresses bzip2 in one piece: it asked for all of it
    at once), declared as such or as 1 MiB."""
    raw, size = bzip2_zeros(4 * GiB - (64 << 20))
    assert len(raw) < 8000 and size > 3 * GiB
    server.files[H2Z] = zip_with_raw(OK, "horse2zebra/trainA/bomb.jpg", raw, zipfile.ZIP_BZIP2,
                                     size if declared == "honest" else 1 << 20)
    result = fetch_capped(server, tmp_path / "d")
    assert_refused(result, tmp_path, "horse2zebra.zip", "bomb.jpg", "bzip2", "removed")


def test_lzma_zip_member_is_refused(server, tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(*OK[0])
        z.writestr("horse2zebra/trainA/x.jpg", b"x" * 1000, compress_type=zipfile.ZIP_LZMA)
    server.files[H2Z] = buf.getvalue()
    with pytest.raises(ArchiveError, match=r"x\.jpg' is compressed with LZMA"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path / "d") == {}


@pytest.mark.multiprocess
def test_deflate_bomb_beyond_the_ratio_is_refused_before_writing(server, tmp_path):
    """2 MB of deflate (zip's own method) unpacking to 2 GiB: refused from its declared sizes."""
    raw, size = deflate_zeros(2 * GiB)
    server.files[H2Z] = zip_with_raw(OK, "horse2zebra/trainA/bomb.jpg", raw, zipfile.ZIP_DEFLATED, size)
    result = fetch_capped(server, tmp_path / "d")
    assert_refused(result, tmp_path, "bomb.jpg", "declares 2.0 GiB", "more than 100:1", "--max-ratio")


def test_max_ratio_raises_the_limit(server, tmp_path):
    raw, size = deflate_zeros(24 << 20)  # 24 MiB from 24 KB: 1000:1
    server.files[H2Z] = zip_with_raw(OK, "horse2zebra/trainA/blank.jpg", raw, zipfile.ZIP_DEFLATED, size,
                                     crc=zipfile.crc32(bytes(size)))
    with pytest.raises(ArchiveError, match="more than 100:1"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    with pytest.raises(UsageError, match="--max-ratio 0.5: at least 1"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None, max_ratio=0.5)
    f = fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None, max_ratio=2000)
    assert (f.target / "trainA" / "blank.jpg").stat().st_size == size and f.folders == {"trainA": 2}


@pytest.mark.multiprocess
def test_sparse_tar_member_is_refused(server, tmp_path):
    """134 bytes of .tar.gz declaring an 8 GiB file of holes (it was written until the disk was full)."""
    server.files[FACADES] = sparse_tar_gz([("facades/train/1.jpg", b"fine")], "facades/train/2.jpg", 8 * GiB)
    assert len(server.files[FACADES]) < 400
    result = fetch_capped(server, tmp_path / "d", "pix2pix/facades")
    assert_refused(result, tmp_path, "facades.tar.gz", "2.jpg", "sparse file", "8.0 GiB")
    assert disk_used(tmp_path) < 1 << 20


def test_members_beyond_the_free_space_are_refused_before_writing(server, tmp_path, monkeypatch):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "horse2zebra.zip").write_bytes(server.files[H2Z])  # there already: unpacked, not downloaded
    usage = extract.shutil.disk_usage(tmp_path)._replace(free=len(server.files[H2Z]) // 2)
    monkeypatch.setattr(extract.shutil, "disk_usage", lambda _: usage)
    with pytest.raises(ArchiveError, match=r"members declare .* KiB or more, 47.7 KiB is free where it is unpacked; nothing written"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path / "d") == {"horse2zebra.zip": server.files[H2Z]}


def test_a_member_giving_more_than_it_declares_stops_at_the_declared_size(tmp_path):
    source = io.BytesIO(bytes(5 << 20))  # a decompressor that does not stop where the header says
    with pytest.raises(ArchiveError, match=r"'m.jpg' unpacks to more than the 1.0 MiB it declares"):
        extract._copy(source, tmp_path / "m.jpg", tmp_path / "x.zip", "m.jpg", 1 << 20)
    assert (tmp_path / "m.jpg").stat().st_size <= 1 << 20
    with pytest.raises(ArchiveError, match=r"'n.jpg' ends after 5.0 MiB of the 6.0 MiB it declares"):
        extract._copy(io.BytesIO(bytes(5 << 20)), tmp_path / "n.jpg", tmp_path / "x.zip", "n.jpg", 6 << 20)


def test_every_member_is_counted_before_the_folder_is_kept(server, tmp_path, monkeypatch):
    original = extract._write

    def lose_one(tmp, parts, is_dir, size, open_member, archive, name):
        if name.endswith("trainB/n1.jpg"):
            return  # as if another process removed it, or a write went missing
        original(tmp, parts, is_dir, size, open_member, archive, name)

    monkeypatch.setattr(extract, "_write", lose_one)
    with pytest.raises(ArchiveError, match=r"11 files of .* unpacked, the archive holds 12 "):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path / "d") == {}


def test_a_second_fetch_of_the_same_name_is_refused_and_the_first_completes(server, tmp_path):
    server.rate = 40_000  # ~2.5 s for the ~100 KB archive: the second starts while the first downloads
    first: dict = {}

    def run_first():
        try:
            first["result"] = fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False,
                                    log=lambda _: None)
        except BaseException as e:  # noqa: BLE001 -- reported by the assertion below
            first["error"] = e

    t = threading.Thread(target=run_first)
    t.start()
    for _ in range(600):  # until the first is downloading
        if server.requests:
            break
        time.sleep(0.01)
    assert server.requests, "the first fetch never asked the server"
    with pytest.raises(UsageError, match=r"horse2zebra is being fetched by another cgx \(pid \d+, lock .*\.horse2zebra"
                                         r"\.fetching\); wait for it to end"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    t.join(60)
    assert not t.is_alive() and "error" not in first, first
    assert first["result"].folders == {s: 3 for s in ("testA", "testB", "trainA", "trainB")}
    assert len(server.requests) == 1
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["horse2zebra"]  # lock and archive gone
    with pytest.raises(ArchiveError, match="exists already"):  # a third, after the first: refused as ever
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
