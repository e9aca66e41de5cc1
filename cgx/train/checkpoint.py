"""Checkpoints: a folder per step, written atomically, the newest ``keep`` kept.

``checkpoints/step_00001000/`` holds ``train.pt`` (networks, optimizers, schedule, step, the
resolved recipe; written by rank 0) and ``rank_00000.pt``... (that rank's image buffers, random
generators and data position). Everything is first written into ``.step_00001000.tmp/`` and the
folder is renamed into place only after every rank has finished, so a crash mid-write leaves the
previous checkpoint untouched and never a half-written one under a final name. Files load with
``torch.load(weights_only=True)``: a checkpoint cannot run code.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import torch

STEP_DIR = re.compile(r"^step_(\d{8,})$")
SHARED_FILE = "train.pt"


class CheckpointError(RuntimeError):
    pass


def rank_file(rank: int) -> str:
    return f"rank_{rank:05d}.pt"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints under ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found) if (p / SHARED_FILE).is_file()]


def resolve(path: str | Path) -> Path:
    """A checkpoint folder from a checkpoint folder, a run folder or a checkpoints folder (newest)."""
    p = Path(path)
    if (p / SHARED_FILE).is_file():
        return p
    if p.is_file() and p.name == SHARED_FILE:
        return p.parent
    for folder in (p / "checkpoints", p):
        found = list_checkpoints(folder)
        if found:
            return found[-1]
    raise CheckpointError(f"no checkpoint at {p} (expected a step_* folder with {SHARED_FILE}, or a run folder)")


def load_file(path: Path, map_location="cpu") -> dict:
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:
        raise CheckpointError(f"cannot load checkpoint file {path}: {e}") from e


def _save_file(obj: dict, path: Path) -> None:
    part = path.with_name(path.name + ".part")
    torch.save(obj, part)
    with open(part, "rb") as f:
        os.fsync(f.fileno())
    os.replace(part, path)


class CheckpointStore:
    def __init__(self, folder: str | Path, strategy, keep: int = 3) -> None:
        self.folder = Path(folder)
        self.strategy = strategy
        self.keep = keep

    def latest(self) -> Path | None:
        found = list_checkpoints(self.folder)
        return found[-1] if found else None

    def save(self, step: int, shared: dict, per_rank: dict, write_sharded=None) -> Path:
        """Collective: every rank calls it with its own ``per_rank`` state; ``write_sharded(folder)``
        (collective too) adds what each rank writes itself, such as DeepSpeed's checkpoints."""
        final = self.folder / f"step_{step:08d}"
        tmp = self.folder / f".step_{step:08d}.tmp"
        if self.strategy.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
        self.strategy.barrier()
        if write_sharded is not None:
            write_sharded(tmp)
        _save_file(per_rank, tmp / rank_file(self.strategy.rank))
        if self.strategy.is_main:
            _save_file(shared, tmp / SHARED_FILE)
        self.strategy.barrier()
        if self.strategy.is_main:
            if final.exists():  # the same step saved again (e.g. after a resume): swap, then drop the old
                old = self.folder / f".step_{step:08d}.old"
                shutil.rmtree(old, ignore_errors=True)
                os.replace(final, old)
                os.replace(tmp, final)
                shutil.rmtree(old, ignore_errors=True)
            else:
                os.replace(tmp, final)
            for stale in list_checkpoints(self.folder)[: -self.keep]:
                shutil.rmtree(stale, ignore_errors=True)
        self.strategy.barrier()
        return final

    def load(self, path: Path, rank: int) -> tuple[dict, dict | None]:
        shared = load_file(path / SHARED_FILE)
        own = path / rank_file(rank)
        return shared, (load_file(own) if own.is_file() else None)
