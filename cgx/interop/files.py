"""Writing export files: atomically (temporary name, then rename) and never over an existing file
unless asked to."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable

from ..errors import CheckpointError


def check_free(paths: list[Path], force: bool) -> None:
    """Refuse to write over existing files unless ``force``."""
    taken = [p for p in paths if p.exists()]
    if taken and not force:
        raise CheckpointError(f"{taken[0]} already exists; choose another --out, or pass --force to replace it")


def write_atomic(path: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` writes the file at a temporary name beside ``path``; it is then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    try:
        write(tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
