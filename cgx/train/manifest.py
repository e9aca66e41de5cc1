"""A checkpoint's manifest: every file's size and SHA-256, written last, checked before loading.

A checkpoint folder only gets its final name once complete (cgx.train.checkpoint), but a file can
still be damaged or lost afterwards (a failing disk, a copy cut short, a user's ``rm``). The manifest
lets the loader tell, before it trusts a checkpoint, and fall back to the previous good one."""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

MANIFEST = "MANIFEST.json"
VERSION = "cgx-checkpoint-manifest/1"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


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
        if _sha256(p) != sha:
            return f"{name} does not match its checksum"
    return None


def size_of(folder: Path) -> int:
    """Bytes of every file of a checkpoint (what the next one will roughly need)."""
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
