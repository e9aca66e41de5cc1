"""cgx datasets fetch against a local HTTP server on 127.0.0.1 (archive_server.py): layout, resume of an
interrupted transfer, a server that ignores Range, and archives refused with nothing left behind."""
from __future__ import annotations

import hashlib
import io
import json
import random
import shutil
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest
from archive_server import ArchiveServer

from cgx.cli import main as cli_main
from cgx.datasets import catalog
from cgx.datasets.fetch import fetch, summary
from cgx.errors import ArchiveError, DownloadError, UsageError

H2Z = "/cyclegan/datasets/horse2zebra.zip"
FACADES = "/pix2pix/datasets/facades.tar.gz"
SPLITS = ("trainA", "trainB", "testA", "testB")


def payload(seed: int, n: int = 8000) -> bytes:
    return random.Random(seed).randbytes(n)


def h2z_zip() -> bytes:
    """horse2zebra/{trainA,trainB,testA,testB}/ with 3 'images' each, stored (not compressed): ~100 KB."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        z.writestr("horse2zebra/", b"")
        for i, split in enumerate(SPLITS):
            for j in range(3):
                z.writestr(f"horse2zebra/{split}/n{j}.jpg", payload(10 * i + j))
    return buf.getvalue()


def facades_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for split, n in (("train", 3), ("val", 1), ("test", 2)):
            for j in range(n):
                data = payload(100 + j)
                info = tarfile.TarInfo(f"facades/{split}/{j + 1}.jpg")
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.fixture
def server():
    s = ArchiveServer(files={H2Z: h2z_zip(), FACADES: facades_tar()}).start()
    yield s
    s.stop()


def tree(root: Path) -> dict[str, bytes | None]:
    """Every path under root -> its bytes (None for a folder)."""
    return {p.relative_to(root).as_posix(): (p.read_bytes() if p.is_file() else None) for p in sorted(root.rglob("*"))}


def test_fetch_unpaired_in_authors_layout(server, tmp_path):
    f = fetch("horse2zebra", tmp_path / "datasets", url=server.url(), progress=False, log=lambda _: None)
    target = tmp_path / "datasets" / "horse2zebra"
    assert f.target == target and f.folders == {s: 3 for s in sorted(SPLITS)}
    assert (target / "trainA" / "n1.jpg").read_bytes() == payload(1)
    assert sorted(p.name for p in (tmp_path / "datasets").iterdir()) == ["horse2zebra"]  # archive removed, no .part
    assert f.downloaded.expected_size == len(server.files[H2Z]) and f.downloaded.resumed_from == 0
    assert f.downloaded.sha256 == hashlib.sha256(server.files[H2Z]).hexdigest()
    assert [(r.path, r.range, r.status) for r in server.requests] == [(H2Z, None, 200)]
    text = summary(f)
    assert f"cgx shards {target} {target}_shards" in text and "--paired" not in text


def test_fetch_paired_tar_gz(server, tmp_path, capsys):
    assert cli_main(["datasets", "fetch", "pix2pix/facades", "--to", str(tmp_path), "--url", server.url(),
                     "--no-progress"]) == 0
    assert sorted(tree(tmp_path / "facades")) == ["test", "test/1.jpg", "test/2.jpg", "train", "train/1.jpg",
                                                  "train/2.jpg", "train/3.jpg", "val", "val/1.jpg"]
    out = capsys.readouterr().out
    assert f"cgx shards {tmp_path / 'facades'} {tmp_path / 'facades_shards'} --paired" in out
    assert "no checksum known" in out and "Content-Length" in out


def test_interrupted_download_is_resumed_with_a_range_request(server, tmp_path, capsys):
    body = server.files[H2Z]
    server.cuts = [30_000]
    args = ["datasets", "fetch", "horse2zebra", "--to", str(tmp_path), "--url", server.url(), "--no-progress"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    part = tmp_path / "horse2zebra.zip.part"
    assert len(err) == 1 and server.url() + H2Z in err[0] and "kept" in err[0] and str(part) in err[0], err
    assert part.read_bytes() == body[:30_000]
    assert not (tmp_path / "horse2zebra").exists()

    assert cli_main(args) == 0
    assert "resumed at 29.3 KiB" in capsys.readouterr().out
    assert [(r.range, r.status) for r in server.requests] == [(None, 200), ("bytes=30000-", 206)]
    assert tree(tmp_path / "horse2zebra")["testB/n2.jpg"] == payload(32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horse2zebra"]


def test_a_server_that_ignores_range_starts_over(server, tmp_path, capsys):
    server.cuts, server.ignore_range = [5_000], True
    with pytest.raises(DownloadError):
        fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    f = fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert f.downloaded.restarted and f.downloaded.resumed_from == 0
    assert [(r.range, r.status) for r in server.requests] == [(None, 200), ("bytes=5000-", 200)]
    assert "ignores Range" in capsys.readouterr().err
    assert f.folders == {s: 3 for s in sorted(SPLITS)}


def test_a_complete_part_is_finished_without_downloading_again(server, tmp_path):
    (tmp_path / "horse2zebra.zip.part").write_bytes(server.files[H2Z])  # killed before the rename
    f = fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert [(r.range, r.status) for r in server.requests] == [(f"bytes={len(server.files[H2Z])}-", 416)]
    assert f.folders["trainA"] == 3


def test_corrupt_zip_refused_and_removed(server, tmp_path):
    body = bytearray(server.files[H2Z])
    i = body.index(payload(11)[:64])  # inside trainB/n1.jpg's stored bytes: the CRC check fails
    body[i + 10] ^= 0xFF
    server.files[H2Z] = bytes(body)
    with pytest.raises(ArchiveError, match=r"trainB/n1\.jpg.*corrupt.*removed"):
        fetch("horse2zebra", tmp_path / "d", url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {"d": None}  # no data set, no half data set, no archive, no .part


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_corrupt_tar_gz_refused_and_removed(server, tmp_path, damage):
    body = server.files[FACADES]
    server.files[FACADES] = body[: len(body) // 2] if damage == "truncated" else b"\x1f\x8b" + payload(7, 500)
    with pytest.raises(ArchiveError, match="corrupt|not a readable tar"):
        fetch("pix2pix/facades", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {}


def test_tar_gz_with_a_bad_gzip_checksum_refused(server, tmp_path):
    body = bytearray(server.files[FACADES])
    body[-6] ^= 0xFF  # the CRC-32 in the gzip trailer, after the tar's last block: tarfile alone stops before it
    server.files[FACADES] = bytes(body)
    with pytest.raises(ArchiveError, match="corrupt gzip stream.*CRC"):
        fetch("pix2pix/facades", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {}


def test_not_enough_disk_space(server, tmp_path, monkeypatch):
    from cgx.datasets import download

    usage = shutil.disk_usage(tmp_path)._replace(free=1000)
    monkeypatch.setattr(download.shutil, "disk_usage", lambda _: usage)
    with pytest.raises(DownloadError, match=r"1000 B free, the download needs 9[0-9.]+ KiB more"):
        fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {}


def test_not_a_zip_refused(server, tmp_path):
    server.files[H2Z] = b"<html>mirror error page</html>"
    with pytest.raises(ArchiveError, match="not a readable zip"):
        fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {}


def _zip(*members) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("horse2zebra/trainA/ok.jpg", b"fine")
        for info, data in members:
            z.writestr(info, data)
    return buf.getvalue()


def _zip_symlink() -> bytes:
    info = zipfile.ZipInfo("horse2zebra/trainA/link.jpg")
    info.create_system = 3
    info.external_attr = (0o120777) << 16  # S_IFLNK
    return _zip((info, "/etc/passwd"))


def _tar(*members) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        data = b"fine"
        ok = tarfile.TarInfo("facades/train/1.jpg")
        ok.size = len(data)
        t.addfile(ok, io.BytesIO(data))  # written before the bad member: must go too
        for info in members:
            if info.isreg():
                info.size = 4
                t.addfile(info, io.BytesIO(b"evil"))
            else:
                t.addfile(info)
    return buf.getvalue()


def _tarinfo(name, kind=tarfile.REGTYPE, link=""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


@pytest.mark.parametrize("case,archive,match", [
    ("zip ..", lambda: _zip(("horse2zebra/../../evil.txt", b"evil")), r"outside the target"),
    ("zip absolute", lambda: _zip(("/tmp/cgx_evil.txt", b"evil")), r"absolute path"),
    ("zip backslash ..", lambda: _zip(("horse2zebra\\..\\..\\evil.txt", b"evil")), r"outside the target"),
    ("zip symlink", _zip_symlink, r"symbolic link"),
    ("tar ..", lambda: _tar(_tarinfo("facades/../../evil.txt")), r"outside the target"),
    ("tar absolute", lambda: _tar(_tarinfo("/tmp/cgx_evil.txt")), r"absolute path"),
    ("tar symlink", lambda: _tar(_tarinfo("facades/train/2.jpg", tarfile.SYMTYPE, "/etc/passwd")), r"symbolic link"),
    ("tar hard link", lambda: _tar(_tarinfo("facades/train/2.jpg", tarfile.LNKTYPE, "/etc/passwd")), r"hard link"),
    ("tar device", lambda: _tar(_tarinfo("facades/train/dev", tarfile.CHRTYPE)), r"special file"),
])
def test_unsafe_archives_refused_with_nothing_written(server, tmp_path, case, archive, match):
    name, path = ("horse2zebra", H2Z) if case.startswith("zip") else ("pix2pix/facades", FACADES)
    server.files[path] = archive()
    outer = tmp_path / "outer"
    (outer / "keep.txt").parent.mkdir()
    (outer / "keep.txt").write_text("mine")
    with pytest.raises(ArchiveError, match=match):
        fetch(name, outer / "a" / "datasets", url=server.url(), progress=False, log=lambda _: None)
    assert tree(tmp_path) == {"outer": None, "outer/keep.txt": b"mine", "outer/a": None, "outer/a/datasets": None}
    assert not Path("/tmp/cgx_evil.txt").exists()


def test_existing_data_set_is_never_replaced(server, tmp_path):
    (tmp_path / "horse2zebra").mkdir()
    (tmp_path / "horse2zebra" / "mine.jpg").write_bytes(b"mine")
    with pytest.raises(ArchiveError, match="exists already.*never replaced"):
        fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert server.requests == [] and tree(tmp_path) == {"horse2zebra": None, "horse2zebra/mine.jpg": b"mine"}


def test_an_archive_already_there_is_unpacked_and_kept(server, tmp_path):
    (tmp_path / "horse2zebra.zip").write_bytes(server.files[H2Z])  # e.g. copied in by hand on an air-gapped host
    f = fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert server.requests == [] and f.archive_kept and f.downloaded is None
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horse2zebra", "horse2zebra.zip"]


def test_interrupted_unpacking_leaves_no_half_data_set(server, tmp_path, monkeypatch):
    from cgx.datasets import extract

    written = []
    original = extract._copy

    def copy_then_interrupt(src, path, archive, name, size):
        if len(written) == 2:
            raise KeyboardInterrupt
        written.append(name)
        original(src, path, archive, name, size)

    monkeypatch.setattr(extract, "_copy", copy_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["horse2zebra.zip"]  # no target, no .unpacking folder
    monkeypatch.setattr(extract, "_copy", original)
    f = fetch("horse2zebra", tmp_path, url=server.url(), progress=False, log=lambda _: None)
    assert len(server.requests) == 1 and f.folders["testB"] == 3


def test_sha256_checked(server, tmp_path):
    good = hashlib.sha256(server.files[H2Z]).hexdigest()
    with pytest.raises(DownloadError, match="SHA-256.*removed"):
        fetch("horse2zebra", tmp_path, url=server.url(), sha256="0" * 64, progress=False, log=lambda _: None)
    assert tree(tmp_path) == {}
    assert fetch("horse2zebra", tmp_path, url=server.url(), sha256=good.upper(), progress=False,
                 log=lambda _: None).downloaded.sha256 == good


def test_http_and_network_errors_name_the_url(server, tmp_path, monkeypatch, capsys):
    assert cli_main(["datasets", "fetch", "monet2photo", "--to", str(tmp_path), "--url", server.url()]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{server.url()}/cyclegan/datasets/monet2photo.zip: HTTP 404" in err
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(catalog.URL_ENV, f"http://127.0.0.1:{port}/mirror/")
    assert cli_main(["datasets", "fetch", "horse2zebra", "--to", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cgx: error: http://127.0.0.1:{port}/mirror/cyclegan/datasets/horse2zebra.zip: cannot "
                          f"connect") and err.count("\n") == 1


def test_environment_variable_sets_the_base_url(server, tmp_path, monkeypatch):
    monkeypatch.setenv(catalog.URL_ENV, server.url())
    assert fetch("horse2zebra", tmp_path, progress=False, log=lambda _: None).url == server.url() + H2Z


@pytest.mark.parametrize("name,match", [
    ("hors2zebra", r"unknown data set 'hors2zebra' \(did you mean horse2zebra\?\); known: apple2orange, "),
    ("facades", r"published twice: cyclegan/facades \(unpaired.*or pix2pix/facades \(aligned"),
    ("cityscapes", r"not distributed by the authors.*cityscapes-dataset.com"),
])
def test_names_refused_with_the_choices(name, match, tmp_path):
    with pytest.raises(UsageError, match=match):
        fetch(name, tmp_path, url="http://127.0.0.1:9", log=lambda _: None)
    assert tree(tmp_path) == {}


def test_bad_base_url_and_checksum_refused(tmp_path):
    with pytest.raises(UsageError, match="--url 'ftp://x'.*http://, https:// or file:"):
        fetch("horse2zebra", tmp_path, url="ftp://x", log=lambda _: None)
    with pytest.raises(UsageError, match="--sha256 'abc': 64 hexadecimal digits"):
        fetch("horse2zebra", tmp_path, url="http://127.0.0.1:9", sha256="abc", log=lambda _: None)


def test_file_url_mirror(tmp_path):
    mirror = tmp_path / "mirror" / "cyclegan" / "datasets"
    mirror.mkdir(parents=True)
    (mirror / "horse2zebra.zip").write_bytes(h2z_zip())
    f = fetch("horse2zebra", tmp_path / "d", url=(tmp_path / "mirror").as_uri(), progress=False, log=lambda _: None)
    assert f.folders == {s: 3 for s in sorted(SPLITS)}


def test_list(capsys):
    assert cli_main(["datasets", "list"]) == 0
    out = capsys.readouterr().out
    for name in ("horse2zebra", "monet2photo", "summer2winter_yosemite", "apple2orange", "edges2shoes",
                 "cyclegan/facades", "pix2pix/facades", "cyclegan/maps", "pix2pix/maps"):
        assert f"\n{name} " in out
    assert catalog.DEFAULT_URL in out and "no checksum known" in out
    assert cli_main(["datasets", "list", "--json", "--url", "http://mirror.lan/gans/"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["pix2pix/facades"]["url"] == "http://mirror.lan/gans/pix2pix/datasets/facades.tar.gz"
    assert rows["cyclegan/horse2zebra"]["paired"] is False and rows["pix2pix/edges2shoes"]["paired"] is True
    assert len(rows) == len(catalog.CATALOG) == 22


def test_help(capsys):
    with pytest.raises(SystemExit):
        cli_main(["datasets", "fetch", "--help"])
    out = capsys.readouterr().out
    assert "Range" in out and "--url" in out and "CGX_DATASETS_URL" in out and "pix2pix/facades" in out
