"""Unpack a .zip or .tar(.gz) archive safely into a new folder.

Every member is checked before anything of it is written: its path must stay inside the target (no
absolute path, drive letter or ``..``), and it must be a plain file or folder (no symbolic or hard
link, device, FIFO; no encrypted zip member). One bad member refuses the whole archive. Members are
written by this module (never ``extractall``), with the default permissions, into a temporary folder
beside the target, ``DIR/.NAME.unpacking``, which is renamed to the target only when every member is
in; on any failure (a bad member, a corrupt archive, an interrupt) it is removed, so nothing is left
and nothing is ever written outside it. An existing target is never replaced.

Sizes are checked before anything of a member is written (the whole zip before its first member; a
streamed tar member by member): each member's declared size against ``max_ratio`` (100 by default)
times its compressed size, the running total against ``max_ratio`` times the archive's size and
against the free disk space. Decompression is streamed in 1 MiB pieces and a member that gives more
(or fewer) bytes than it declares stops at once and refuses the archive. Only stored and deflate zip
members are unpacked (bzip2 and LZMA: zipfile decompresses those in one piece, so a few KB could
ask for GBs of memory), and no sparse tar member (a few bytes declaring GBs of holes). At the end
every member is counted in the folder: an archive is unpacked whole or not at all.

An archive holding a single top-level folder (the authors': ``horse2zebra/trainA/...``) gives that
folder's contents; otherwise the target holds the members as they are. ``__MACOSX/`` entries (macOS
resource forks) are left out.
"""
from __future__ import annotations

import gzip
import os
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from ..errors import ArchiveError
from ..safe_text import shown
from .download import human

CHUNK = 1 << 20
SKIPPED = "__MACOSX"
MAX_RATIO = 100.0
"""Bytes unpacked per archive byte at most, for each zip member and for the whole archive (``cgx
datasets fetch --max-ratio``). JPEG and PNG images hardly compress; an archive beyond this is a bomb."""
SMALL_MEMBER = 1 << 20
"""A member up to this size passes the per-member ratio (a blank image or a text file compresses well)."""
SMALL_TOTAL = 64 << 20
"""An archive may unpack to this much whatever its ratio."""
ZIP_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}
"""The zip compression methods unpacked: the two every zip tool writes, and decompressed in pieces."""

_CORRUPT = (zipfile.BadZipFile, tarfile.TarError, EOFError, zlib.error, OSError, NotImplementedError,
            RuntimeError, ValueError)
"""What reading a damaged archive raises (zipfile: BadZipFile for a CRC error, NotImplementedError for
an unknown compression; gzip: BadGzipFile (OSError) and EOFError for a truncated stream)."""


def member_parts(name: str, archive: Path) -> tuple[str, ...]:
    """The path components of member ``name``; ArchiveError for one that could land outside the target."""
    if "\x00" in name:
        raise ArchiveError(f"{archive}: member {name!r} has a NUL in its name; the archive is refused")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or re.match(r"^[A-Za-z]:", posix):
        raise ArchiveError(f"{archive}: member {name!r} has an absolute path; the archive is refused, nothing "
                           f"written")
    parts = tuple(p for p in posix.split("/") if p not in ("", "."))
    if ".." in parts:
        raise ArchiveError(f"{archive}: member {name!r} points outside the target folder (..); the archive is "
                           f"refused, nothing written")
    return parts


class _Plan:
    """Tracks the paths and bytes admitted so far: a path cannot be both a file and a folder, nor a file
    twice; the bytes must fit the expansion ratio and the free disk space."""

    def __init__(self, archive: Path, tmp: Path, max_ratio: float = MAX_RATIO):
        self.archive, self.files, self.dirs = archive, set(), set()
        self.max_ratio, self.bytes = max_ratio, 0
        self.archive_size = archive.stat().st_size
        self.free = shutil.disk_usage(tmp).free

    def admit(self, name: str, kind: str | None, is_dir: bool, size: int = 0,
              compressed: int | None = None) -> tuple[str, ...] | None:
        """The member ``name``'s path parts where it is to be written (None: left out), after refusing
        what is not a plain file or folder (``kind``: what it is, else None), clashes with the others, or
        whose declared ``size`` (``compressed`` in the archive, where known) does not fit the limits."""
        parts = member_parts(name, self.archive)
        if not parts or parts[0] == SKIPPED:
            return None
        if kind:
            raise ArchiveError(f"{self.archive}: member {name!r} is {kind}; only plain files and folders are "
                               f"unpacked, the archive is refused, nothing written")
        self.add(name, parts, is_dir)
        if not is_dir:
            self.check_size(name, size, compressed)
        return parts

    def check_size(self, name: str, size: int, compressed: int | None) -> None:
        ratio, raise_it = self.max_ratio, f"(--max-ratio raises the limit of {self.max_ratio:g}:1)"
        if compressed is not None and size > max(ratio * compressed, SMALL_MEMBER):
            raise ArchiveError(f"{self.archive}: member {name!r} declares {human(size)} from {human(compressed)} "
                               f"compressed, more than {ratio:g}:1; the archive is refused as a bomb, nothing "
                               f"written {raise_it}")
        self.bytes += size
        if self.bytes > max(ratio * self.archive_size, SMALL_TOTAL):
            raise ArchiveError(f"{self.archive}: its members declare {human(self.bytes)} or more from "
                               f"{human(self.archive_size)}, more than {ratio:g}:1; the archive is refused as a bomb, "
                               f"nothing written {raise_it}")
        if self.bytes > self.free:
            raise ArchiveError(f"{self.archive}: its members declare {human(self.bytes)} or more, {human(self.free)} "
                               f"is free where it is unpacked; nothing written")

    def add(self, name: str, parts: tuple[str, ...], is_dir: bool) -> None:
        parents = {parts[:i] for i in range(1, len(parts))}
        if parts in self.files or (parents & self.files) or (not is_dir and parts in self.dirs):
            raise ArchiveError(f"{self.archive}: member {name!r} is given twice, or is both a file and a "
                               f"folder; the archive is refused")
        self.dirs |= parents
        (self.dirs if is_dir else self.files).add(parts)


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    """None for a plain file or folder, else what the member is."""
    if info.flag_bits & 0x1:
        return "an encrypted file"
    if info.compress_type not in ZIP_METHODS and not info.is_dir():
        method = {zipfile.ZIP_BZIP2: "bzip2", zipfile.ZIP_LZMA: "LZMA"}.get(info.compress_type,
                                                                        f"method {info.compress_type}")
        return (f"compressed with {method} (unpacked: {' or '.join(ZIP_METHODS.values())}, what zip tools write by "
                f"default; zipfile decompresses {method} in one piece, however large)")
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):  # Unix: the high bits are st_mode
        if stat.S_ISLNK(mode):
            return "a symbolic link"
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return "a special file (device, FIFO or socket)"
    return None


def _tar_kind(m: tarfile.TarInfo) -> str | None:
    if m.issparse():
        return f"a sparse file (declaring {human(m.size)}, mostly holes)"
    if m.isreg() or m.isdir():
        return None
    if m.issym():
        return "a symbolic link"
    if m.islnk():
        return "a hard link"
    return "a special file (device, FIFO or socket)"


def _copy(src, path: Path, archive: Path, name: str, size: int) -> None:
    """``size`` bytes of the member ``src`` into the new file ``path``; ArchiveError as soon as it gives
    more, or if it ends before."""
    done = 0
    with open(path, "xb") as out:  # x: a fresh file in the fresh folder, never one that is there
        while True:
            try:
                block = src.read(min(CHUNK, size - done + 1))
            except _CORRUPT as e:
                raise ArchiveError(f"{archive}: member {name!r} cannot be read ({e or type(e).__name__}): the "
                                   f"archive is corrupt; nothing written") from None
            if not block:
                break
            done += len(block)
            if done > size:
                raise ArchiveError(f"{archive}: member {name!r} unpacks to more than the {human(size)} it "
                                   f"declares; the archive is refused, nothing written")
            try:
                out.write(block)
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(path)) from None
    if done != size:
        raise ArchiveError(f"{archive}: member {name!r} ends after {human(done)} of the {human(size)} it "
                           f"declares: the archive is corrupt; nothing written")


def _write(tmp: Path, parts: tuple[str, ...], is_dir: bool, size: int, open_member, archive: Path,
           name: str) -> None:
    path = tmp.joinpath(*parts)
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = open_member()
    except _CORRUPT as e:
        raise ArchiveError(f"{archive}: member {name!r} cannot be read ({e or type(e).__name__}): the archive "
                           f"is corrupt; nothing written") from None
    with src:
        _copy(src, path, archive, name, size)


def _unpack_zip(archive: Path, tmp: Path, progress: bool, max_ratio: float) -> _Plan:
    try:
        zf = zipfile.ZipFile(archive)
    except _CORRUPT as e:
        raise ArchiveError(f"{archive}: not a readable zip archive ({e or type(e).__name__}); nothing written") from None
    with zf:
        plan, members = _Plan(archive, tmp, max_ratio), []
        for info in zf.infolist():  # the central directory: every member is checked before any is written
            parts = plan.admit(info.filename, _zip_kind(info), info.is_dir(), info.file_size, info.compress_size)
            if parts is not None:
                members.append((info, parts))
        if not plan.files:
            raise ArchiveError(f"{archive}: holds no files; nothing written")
        from tqdm import tqdm

        for info, parts in tqdm(members, desc=f"unpacking {archive.name}", unit=" files", disable=not progress):
            _write(tmp, parts, info.is_dir(), info.file_size, lambda: zf.open(info), archive, info.filename)
    return plan


def _unpack_tar(archive: Path, tmp: Path, progress: bool, max_ratio: float) -> _Plan:
    # One streaming pass (a .tar.gz has no index): each member is checked before it is written, and a bad
    # one removes everything written before it (the temporary folder). A gzip stream is then read to its
    # end, where gzip checks its CRC-32 and length: tarfile stops at the end-of-archive blocks before that.
    from tqdm import tqdm

    with open(archive, "rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
        raw.seek(0)
        stream = gzip.GzipFile(fileobj=raw, mode="rb") if gzipped else raw
        try:
            tf = tarfile.open(fileobj=stream, mode="r|")
        except _CORRUPT as e:
            raise ArchiveError(f"{archive}: not a readable tar archive ({e or type(e).__name__}); nothing "
                               f"written") from None
        plan = _Plan(archive, tmp, max_ratio)
        with tf, tqdm(desc=f"unpacking {archive.name}", unit=" files", disable=not progress) as bar:
            while True:
                try:
                    m = tf.next()
                except _CORRUPT as e:
                    raise ArchiveError(f"{archive}: corrupt tar archive ({e or type(e).__name__}); nothing "
                                       f"written") from None
                if m is None:
                    break
                parts = plan.admit(m.name, _tar_kind(m), m.isdir(), m.size)
                if parts is None:
                    continue
                _write(tmp, parts, m.isdir(), m.size, lambda: tf.extractfile(m), archive, m.name)
                bar.update(1)
            try:
                while gzipped and stream.read(CHUNK):
                    pass
            except _CORRUPT as e:
                raise ArchiveError(f"{archive}: corrupt gzip stream ({e or type(e).__name__}); nothing "
                                   f"written") from None
    if not plan.files:
        raise ArchiveError(f"{archive}: holds no files; nothing written")
    return plan


def _count(tmp: Path, plan: _Plan, archive: Path) -> None:
    """Every admitted member is in ``tmp``, with its bytes, and nothing else is."""
    files = size = 0
    for folder, _, names in os.walk(tmp):
        for n in names:
            st = os.lstat(os.path.join(folder, n))
            if not stat.S_ISREG(st.st_mode):
                raise ArchiveError(f"{archive}: {shown(os.path.join(folder, n))} is not a plain file after "
                                   f"unpacking; nothing kept")
            files, size = files + 1, size + st.st_size
    if (files, size) != (len(plan.files), plan.bytes):
        raise ArchiveError(f"{archive}: {files} files of {human(size)} unpacked, the archive holds {len(plan.files)} "
                           f"of {human(plan.bytes)} (was the folder changed meanwhile?); nothing kept")


def unpacking_folder(target: Path) -> Path:
    return target.with_name(f".{target.name}.unpacking")


def unpack(archive: Path, target: Path, *, progress: bool = True, max_ratio: float = MAX_RATIO) -> Path:
    """Unpack ``archive`` (.zip, .tar, .tar.gz, .tgz) into the new folder ``target``; see the module docstring.
    The caller keeps others from unpacking into the same ``target`` meanwhile (``fetch`` holds a lock)."""
    archive, target = Path(archive), Path(target)
    if os.path.lexists(target):
        raise ArchiveError(f"{target} exists already; it is never replaced: remove it, or unpack elsewhere")
    name = archive.name.lower()
    if name.endswith(".zip"):
        unpack_into = _unpack_zip
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        unpack_into = _unpack_tar
    else:
        raise ArchiveError(f"{archive}: unknown archive type; .zip, .tar, .tar.gz or .tgz")
    tmp = unpacking_folder(target)
    if tmp.is_symlink():
        raise ArchiveError(f"{tmp} is a symbolic link, not cgx's unpacking folder: remove it and run again")
    if tmp.exists():  # left by an interrupted unpacking (cgx's own name)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        plan = unpack_into(archive, tmp, progress, max_ratio)
        _count(tmp, plan, archive)
        entries = list(tmp.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        if os.path.lexists(target):
            raise ArchiveError(f"{target} appeared while unpacking; it is never replaced: remove it and run again")
        root.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
