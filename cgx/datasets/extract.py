"""Unpack a .zip or .tar(.gz) archive safely into a new folder.

Every member is checked before anything of it is written: its path must stay inside the target (no
absolute path, drive letter or ``..``), and it must be a plain file or folder (no symbolic or hard
link, device, FIFO; no encrypted zip member). One bad member refuses the whole archive. Members are
written by this module (never ``extractall``), with the default permissions, into a temporary folder
beside the target, ``DIR/.NAME.unpacking``, which is renamed to the target only when every member is
in; on any failure (a bad member, a corrupt archive, an interrupt) it is removed, so nothing is left
and nothing is ever written outside it. An existing target is never replaced.

An archive holding a single top-level folder (the authors': ``horse2zebra/trainA/...``) gives that
folder's contents; otherwise the target holds the members as they are. ``__MACOSX/`` entries (macOS
resource forks) are left out.
"""
from __future__ import annotations

import gzip
import re
import shutil
import stat
import tarfile
import zipfile
import zlib
from pathlib import Path

from ..errors import ArchiveError

CHUNK = 1 << 20
SKIPPED = "__MACOSX"

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
    """Tracks the paths written so far: a path cannot be both a file and a folder, nor a file twice."""

    def __init__(self, archive: Path):
        self.archive, self.files, self.dirs = archive, set(), set()

    def admit(self, name: str, kind: str | None, is_dir: bool) -> tuple[str, ...] | None:
        """The member ``name``'s path parts where it is to be written (None: left out), after refusing
        what is not a plain file or folder (``kind``: what it is, else None) or clashes with the others."""
        parts = member_parts(name, self.archive)
        if not parts or parts[0] == SKIPPED:
            return None
        if kind:
            raise ArchiveError(f"{self.archive}: member {name!r} is {kind}; only plain files and folders are "
                               f"unpacked, the archive is refused, nothing written")
        self.add(name, parts, is_dir)
        return parts

    def add(self, name: str, parts: tuple[str, ...], is_dir: bool) -> None:
        parents = {parts[:i] for i in range(1, len(parts))}
        if parts in self.files or (parents & self.files) or (not is_dir and parts in self.dirs):
            raise ArchiveError(f"{self.archive}: member {name!r} is given twice, or is both a file and a folder; "
                               f"the archive is refused")
        self.dirs |= parents
        (self.dirs if is_dir else self.files).add(parts)


def _zip_kind(info: zipfile.ZipInfo) -> str | None:
    """None for a plain file or folder, else what the member is."""
    if info.flag_bits & 0x1:
        return "an encrypted file"
    mode = info.external_attr >> 16
    if info.create_system == 3 and stat.S_IFMT(mode):  # Unix: the high bits are st_mode
        if stat.S_ISLNK(mode):
            return "a symbolic link"
        if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            return "a special file (device, FIFO or socket)"
    return None


def _tar_kind(m: tarfile.TarInfo) -> str | None:
    if m.isreg() or m.isdir():
        return None
    if m.issym():
        return "a symbolic link"
    if m.islnk():
        return "a hard link"
    return "a special file (device, FIFO or socket)"


def _copy(src, path: Path, archive: Path, name: str) -> None:
    with open(path, "wb") as out:
        while True:
            try:
                block = src.read(CHUNK)
            except _CORRUPT as e:
                raise ArchiveError(f"{archive}: member {name!r} cannot be read ({e or type(e).__name__}): the "
                                   f"archive is corrupt; nothing written") from None
            if not block:
                return
            try:
                out.write(block)
            except OSError as e:
                raise OSError(e.errno, e.strerror, str(path)) from None


def _write(tmp: Path, parts: tuple[str, ...], is_dir: bool, open_member, archive: Path, name: str) -> None:
    path = tmp.joinpath(*parts)
    if is_dir:
        path.mkdir(parents=True, exist_ok=True)
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        src = open_member()
    except _CORRUPT as e:
        raise ArchiveError(f"{archive}: member {name!r} cannot be read ({e or type(e).__name__}): the archive is "
                           f"corrupt; nothing written") from None
    with src:
        _copy(src, path, archive, name)


def _unpack_zip(archive: Path, tmp: Path, progress: bool) -> None:
    try:
        zf = zipfile.ZipFile(archive)
    except _CORRUPT as e:
        raise ArchiveError(f"{archive}: not a readable zip archive ({e or type(e).__name__}); nothing written") from None
    with zf:
        plan, members = _Plan(archive), []
        for info in zf.infolist():  # the central directory: every member is checked before any is written
            parts = plan.admit(info.filename, _zip_kind(info), info.is_dir())
            if parts is not None:
                members.append((info, parts))
        if not plan.files:
            raise ArchiveError(f"{archive}: holds no files; nothing written")
        from tqdm import tqdm

        for info, parts in tqdm(members, desc=f"unpacking {archive.name}", unit=" files", disable=not progress):
            _write(tmp, parts, info.is_dir(), lambda: zf.open(info), archive, info.filename)


def _unpack_tar(archive: Path, tmp: Path, progress: bool) -> None:
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
        plan = _Plan(archive)
        with tf, tqdm(desc=f"unpacking {archive.name}", unit=" files", disable=not progress) as bar:
            while True:
                try:
                    m = tf.next()
                except _CORRUPT as e:
                    raise ArchiveError(f"{archive}: corrupt tar archive ({e or type(e).__name__}); nothing "
                                       f"written") from None
                if m is None:
                    break
                parts = plan.admit(m.name, _tar_kind(m), m.isdir())
                if parts is None:
                    continue
                _write(tmp, parts, m.isdir(), lambda: tf.extractfile(m), archive, m.name)
                bar.update(1)
            try:
                while gzipped and stream.read(CHUNK):
                    pass
            except _CORRUPT as e:
                raise ArchiveError(f"{archive}: corrupt gzip stream ({e or type(e).__name__}); nothing "
                                   f"written") from None
    if not plan.files:
        raise ArchiveError(f"{archive}: holds no files; nothing written")


def unpacking_folder(target: Path) -> Path:
    return target.with_name(f".{target.name}.unpacking")


def unpack(archive: Path, target: Path, *, progress: bool = True) -> Path:
    """Unpack ``archive`` (.zip, .tar, .tar.gz, .tgz) into the new folder ``target``; see the module docstring."""
    archive, target = Path(archive), Path(target)
    if target.exists():
        raise ArchiveError(f"{target} exists already; it is never replaced: remove it, or unpack elsewhere")
    name = archive.name.lower()
    if name.endswith(".zip"):
        unpack_into = _unpack_zip
    elif name.endswith((".tar", ".tar.gz", ".tgz")):
        unpack_into = _unpack_tar
    else:
        raise ArchiveError(f"{archive}: unknown archive type; .zip, .tar, .tar.gz or .tgz")
    tmp = unpacking_folder(target)
    if tmp.exists():  # left by an interrupted unpacking (cgx's own name)
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        unpack_into(archive, tmp, progress)
        entries = list(tmp.iterdir())
        root = entries[0] if len(entries) == 1 and entries[0].is_dir() else tmp
        if target.exists():
            raise ArchiveError(f"{target} appeared while unpacking; it is never replaced: remove it and run again")
        root.rename(target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return target
