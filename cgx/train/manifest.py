"""A checkpoint's manifest: every file's size and SHA-256, written last, checked before loading.

A checkpoint folder only gets its final name once complete (cgx.train.checkpoint), but a file can
still be damaged or lost afterwards (a failing disk, a copy cut short, a user's ``rm``). The manifest
lets the loader tell, before it trusts a checkpoint, and fall back to the previous good one.

Before a file is hashed, its structure is checked from its ends, which costs a few KB however large
it is: a ``.pt`` file is a zip archive (torch's format) whose records and directory must account for
every byte of it, so a file of GBs of holes or padding around a small archive (a handed-over run
folder whose manifest declares a 200 GB ``train.pt``) is refused at once instead of being read for
minutes. A large file that passes is hashed with a progress bar."""
from __future__ import annotations

import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

from ..safe_text import shown

MANIFEST = "MANIFEST.json"
VERSION = "cgx-checkpoint-manifest/1"
PROGRESS_BYTES = 256 << 20
"""Files from this size on are hashed with a progress bar (on a terminal)."""
RECORD_SLACK = 1024
"""Bytes a zip record may hold beyond its name and data (torch pads each record's data to 64 bytes)."""


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    size = path.stat().st_size
    from tqdm import tqdm

    with open(path, "rb") as f, tqdm(total=size, unit="B", unit_scale=True, unit_divisor=1024, leave=False,
                                     desc=f"checking {shown(path.name)}", file=sys.stderr,
                                     disable=size < PROGRESS_BYTES or not sys.stderr.isatty()) as bar:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            bar.update(len(block))
    return h.hexdigest()


def unaccounted(path: Path, size: int) -> str | None:
    """Why the ``.pt`` file ``path`` of ``size`` bytes is not one whole zip archive (torch's format) as its
    own directory describes it, read from its ends only; None if it is."""
    try:
        with zipfile.ZipFile(path) as z:
            infos = z.infolist()
            start_dir = z.start_dir
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, NotImplementedError) as e:
        return f"is not a PyTorch file ({e or type(e).__name__}), though {size:,} bytes"
    records = sum(30 + len(i.orig_filename.encode()) + i.compress_size for i in infos)
    held = max((i.header_offset + 30 + i.compress_size for i in infos), default=0)
    if held > start_dir or start_dir - records > RECORD_SLACK * (len(infos) + 1) or start_dir > size:
        return (f"holds {start_dir - min(records, start_dir):,} bytes its zip records do not account for (of "
                f"{size:,}): not a file torch wrote")
    return None


def _files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST)


def write_manifest(folder: Path) -> None:
    """Record every file under ``folder`` (atomically: temp file, fsync, rename)."""
    files = {str(p.relative_to(folder)): {"size": p.stat().st_size, "sha256": _sha256(p)} for p in _files(folder)}
    tmp = folder / (MANIFEST + ".part")
    with open(tmp, "w") as f:
        json.dump({"format": VERSION, "files": files}, f, indent=1, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)


def problem(folder: Path) -> str | None:
    """Why the checkpoint in ``folder`` cannot be trusted, or None if every file is as recorded.
    Every checkpoint cgx writes has a manifest: one without it is incomplete or not cgx's."""
    path = folder / MANIFEST
    if not path.is_file():
        return f"{MANIFEST} is missing"
    try:
        files = json.loads(path.read_text())["files"]
        records = [(str(name), int(rec["size"]), str(rec["sha256"])) for name, rec in files.items()]
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        return f"{MANIFEST} is unreadable ({type(e).__name__})"
    for name, size_written, sha in records:
        if Path(name).is_absolute() or ".." in Path(name).parts:
            return f"{MANIFEST} names a file outside the checkpoint ({name[:80]})"
        p = folder / name
        if not p.is_file():
            return f"{name} is missing"
        size = p.stat().st_size
        if size != size_written:
            return f"{name} has {size} bytes, {size_written} were written"
        why = unaccounted(p, size) if p.suffix == ".pt" else None
        if why is not None:
            return f"{name} {why}"
        if _sha256(p) != sha:
            return f"{name} does not match its checksum"
    return None


def size_of(folder: Path) -> int:
    """Bytes of every file of a checkpoint (what the next one will roughly need)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
