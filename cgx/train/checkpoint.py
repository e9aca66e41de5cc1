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
from typing import Mapping, Protocol

import torch

from ..errors import CheckpointError

STEP_DIR = re.compile(r"^step_(\d{8,})$")
SHARED_FILE = "train.pt"


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


class Stateful(Protocol):
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Group:
    """Several stateful parts saved as one entry: ``{name: part.state_dict()}``."""

    def __init__(self, **parts: Stateful) -> None:
        self.parts = parts

    def state_dict(self) -> dict:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict) -> None:
        for name, part in self.parts.items():
            part.load_state_dict(state[name])


class CheckpointStore:
    """Where, when and how a run's checkpoints are written and read.

    Save and load walk the same maps of named stateful parts (``shared``: written once, by rank 0;
    ``per_rank``: one file per rank), so a part cannot be saved and forgotten on load. A part with
    ``save_sharded(folder)`` / ``load_sharded(folder)`` (DeepSpeed's engines) also writes and reads
    state of its own in the checkpoint folder (collective). The store decides when a checkpoint is due."""

    def __init__(self, folder: str | Path, strategy, keep: int = 3, every: int = 1000, last_step: int | None = None,
                 shared: Mapping[str, Stateful] | None = None, per_rank: Mapping[str, Stateful] | None = None) -> None:
        self.folder = Path(folder)
        self.strategy = strategy
        self.keep = keep
        self.every = every
        self.last_step = last_step
        self.shared = dict(shared or {})
        self.per_rank = dict(per_rank or {})

    def due(self, step: int) -> bool:
        """A checkpoint is written every ``every`` steps and at the last step."""
        return step % self.every == 0 or step == self.last_step

    def latest(self) -> Path | None:
        found = list_checkpoints(self.folder)
        return found[-1] if found else None

    def save(self, step: int, meta: dict, rank_meta: dict) -> Path:
        """Collective: every rank writes its ``per_rank`` parts, rank 0 the ``shared`` ones, each file
        with its ``meta`` entries (step, format, ...) beside the parts."""
        final = self.folder / f"step_{step:08d}"
        tmp = self.folder / f".step_{step:08d}.tmp"
        if self.strategy.is_main:
            self.folder.mkdir(parents=True, exist_ok=True)
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir()
        self.strategy.barrier()
        for part in self.shared.values():
            if hasattr(part, "save_sharded"):
                part.save_sharded(tmp)
        _save_file({**rank_meta, **_states(self.per_rank)}, tmp / rank_file(self.strategy.rank))
        if self.strategy.is_main:
            _save_file({**meta, **_states(self.shared)}, tmp / SHARED_FILE)
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

    def read(self, path: Path, fmt: int) -> tuple[dict, dict | None]:
        """The shared file and this rank's file (None if absent), after checking the format."""
        shared = load_file(path / SHARED_FILE)
        if not isinstance(shared, dict) or shared.get("format") != fmt:
            found = shared.get("format") if isinstance(shared, dict) else None
            raise CheckpointError(f"{path / SHARED_FILE}: checkpoint format {found!r}, this cgx reads format {fmt}; "
                                  f"use the cgx version that wrote it, or start a new train.run_dir")
        own = path / rank_file(self.strategy.rank)
        return shared, (load_file(own) if own.is_file() else None)

    def load_shared(self, path: Path, state: dict) -> None:
        """Collective: every shared part from ``state`` (and its sharded state from ``path``)."""
        for name, part in self.shared.items():
            try:
                part.load_state_dict(state[name])
                if hasattr(part, "load_sharded"):
                    part.load_sharded(path)
            except (RuntimeError, KeyError, ValueError) as e:
                raise CheckpointError(
                    f"checkpoint {path} does not match the recipe's {name}: {str(e).splitlines()[0] if str(e) else repr(e)} ... "
                    f"Use the recipe the run was trained with ({path / SHARED_FILE} holds it), or a new train.run_dir."
                ) from None

    def load_rank(self, path: Path, state: dict) -> None:
        for name, part in self.per_rank.items():
            try:
                part.load_state_dict(state[name])
            except (RuntimeError, KeyError, ValueError) as e:
                raise CheckpointError(f"checkpoint {path / rank_file(self.strategy.rank)}: cannot restore {name}: {e}") from None


def _states(parts: Mapping[str, Stateful]) -> dict:
    return {name: part.state_dict() for name, part in parts.items()}
