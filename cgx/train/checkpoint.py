"""Checkpoints: the format, its one writer and its one reader; a folder per step, written
atomically, the newest ``keep`` kept.

``checkpoints/step_00001000/`` holds ``train.pt`` (every network group with its optimizer and lr
schedule by the group's name, step, the resolved recipe; written by rank 0) and ``rank_00000.pt``... (that rank's image buffers, random
generators and data position). Everything is first written into ``.step_00001000.tmp/`` and the
folder is renamed into place only after every rank has finished, so a crash mid-write leaves the
previous checkpoint untouched and never a half-written one under a final name. Before the rename,
rank 0 writes ``MANIFEST.json`` (every file's size and checksum, cgx.train.manifest); a checkpoint
that no longer matches it is skipped on resume, moved aside as ``damaged_step_...``, and the previous
good one is used. Files load with ``torch.load(weights_only=True)``.

Everything that writes a checkpoint goes through ``CheckpointStore.save`` (training, collective) or
``write_checkpoint`` (one process: ``cgx import``); everything that reads one goes through
``read_checkpoint`` (resume, ``train.init_from``) or ``read_generators`` (translate, grid, eval,
export), which check the manifest and ``FORMAT`` and name the file when either does not fit.
"""
from __future__ import annotations

import errno
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Protocol

import torch

from ..errors import CheckpointError
from ..run_dir import RunDir, step_name
from ..untrusted import load_weights_file
from .manifest import problem, size_of, write_manifest
from ..safe_text import shown

FORMAT = 2
"""The checkpoint format this code writes (``train.pt``'s ``format``). 2: ``groups`` (each network group's
state by name: ``module``, ``optimizer``), ``schedules`` (each group's lr schedule by name). 1 (cgx before
named groups): ``generators`` and ``discriminators`` at the top, ``schedule`` holding both schedules;
still read (``upgrade``), as format 2."""
READS = (1, 2)
"""The formats ``read_checkpoint`` accepts."""
STEP_DIR = re.compile(r"^step_(\d{8,})$")
SHARED_FILE = "train.pt"


def shared_meta(step: int, world_size: int, strategy: str, config: dict) -> dict:
    """The entries of ``train.pt`` beside the saved parts."""
    return {"format": FORMAT, "step": step, "world_size": world_size, "strategy": strategy, "config": config}


def step_of(checkpoint: Path) -> int:
    """The step of a ``step_NNNNNNNN`` checkpoint folder."""
    return int(STEP_DIR.match(Path(checkpoint).name).group(1))


def rank_file(rank: int) -> str:
    return f"rank_{rank:05d}.pt"


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Complete checkpoints under ``folder``, oldest first."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := STEP_DIR.match(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found) if (p / SHARED_FILE).is_file()]


def newest_good(folder: str | Path, move_damaged: bool = False) -> Path | None:
    """The newest checkpoint under ``folder`` whose files match its manifest. Each newer one that
    does not is reported on stderr and, with ``move_damaged``, renamed ``damaged_step_...`` (kept,
    never deleted, and out of the way of the newest-k pruning)."""
    for path in reversed(list_checkpoints(folder)):
        why = _problem(path)
        if why is None:
            return path
        if not path.exists():  # pruned (or swapped for its new save) while it was checked: replaced, not damaged
            continue
        where = path
        if move_damaged:
            where = _free_name(path.parent / f"damaged_{path.name}")
            os.replace(path, where)
        print(f"cgx: warning: checkpoint {shown(path)} is damaged ({shown(why)}); "
              f"{'moved it to ' + where.name + ', ' if move_damaged else ''}trying the one before", file=sys.stderr)
    return None


def _problem(path: Path) -> str | None:
    """``manifest.problem``, with a file that vanishes while it is checked (a running training pruning
    the checkpoint) a problem like any other instead of an OSError."""
    try:
        return problem(path)
    except OSError as e:
        return f"{e.strerror or type(e).__name__} while reading it"


def swap_into_place(tmp: Path, final: Path) -> None:
    """Rename the complete folder ``tmp`` to ``final``. If ``final`` exists (the same step saved
    again, e.g. after a resume) it is swapped out first and dropped only once ``tmp`` is in place."""
    if not final.exists():
        os.replace(tmp, final)
        return
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)


def _free_name(path: Path) -> Path:
    n, out = 1, path
    while out.exists():
        n += 1
        out = path.with_name(f"{path.name}.{n}")
    return out


def resolve(path: str | Path) -> Path:
    """A checkpoint folder whose files match its manifest, from a checkpoint folder or its
    ``train.pt``, a run folder or a checkpoints folder (their newest good one)."""
    p = Path(path)
    if (p / SHARED_FILE).is_file() or (p.is_file() and p.name == SHARED_FILE):
        ckpt = p if p.is_dir() else p.parent
        why = _problem(ckpt)
        if why is not None:
            if not ckpt.exists():
                raise CheckpointError(f"checkpoint {ckpt} was removed while it was checked (a training run replaced "
                                      f"it with a newer one?); name the run folder to read its newest checkpoint")
            raise CheckpointError(f"checkpoint {ckpt} is damaged ({why}); use an earlier one")
        return ckpt
    for folder in (RunDir(p).checkpoints, p):
        if list_checkpoints(folder):
            good = newest_good(folder)
            if good is None:
                raise CheckpointError(f"every checkpoint in {folder} is damaged (see the warnings above)")
            return good
    raise CheckpointError(f"no checkpoint at {p} (expected a step_* folder with {SHARED_FILE}, or a run folder)")


def load_file(path: Path, map_location="cpu") -> dict:
    """A checkpoint file, tensors, numbers and strings only (``cgx.untrusted``: no code is run)."""
    return load_weights_file(path, what="checkpoint file", error=CheckpointError)


def _save_file(obj: dict, path: Path) -> None:
    """Through a file object, so that a full disk is an OSError(ENOSPC) and not torch's
    "unexpected pos" RuntimeError; fsynced, then renamed into place."""
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    os.replace(part, path)


def clean_leftovers(folder: Path) -> None:
    """Rank 0, before the first save: drop what an interrupted save left in a checkpoints folder
    (never a finished checkpoint)."""
    if not folder.is_dir():
        return
    for p in folder.iterdir():
        if p.name.startswith(".step_") and (p.name.endswith(".tmp") or p.name.endswith(".old")):
            shutil.rmtree(p, ignore_errors=True)


def _tmp_folder(final: Path) -> Path:
    return final.with_name(f".{final.name}.tmp")


def _prepare(tmp: Path, previous: Path | None) -> None:
    """An empty ``tmp`` folder, once the disk has room for about one more checkpoint like ``previous``."""
    tmp.parent.mkdir(parents=True, exist_ok=True)
    if tmp.exists():
        shutil.rmtree(tmp)
    need = int(size_of(previous) * 1.1) if previous is not None else 0
    free = shutil.disk_usage(tmp.parent).free
    if need > free:
        raise OSError(errno.ENOSPC, f"about {need / 2**20:.1f} MiB needed, {free / 2**20:.1f} MiB free")
    tmp.mkdir()


def _publish(tmp: Path, final: Path) -> None:
    """The manifest of the complete folder ``tmp``, then ``tmp`` renamed to ``final``."""
    write_manifest(tmp)
    swap_into_place(tmp, final)


def write_checkpoint(final: str | Path, shared: dict) -> Path:
    """One process writes a whole checkpoint folder ``final`` holding ``train.pt`` = ``shared``
    (which must carry ``shared_meta``'s entries): as ``CheckpointStore.save`` does, into a hidden
    temporary folder, fsynced, with its manifest, renamed into place last."""
    final = Path(final)
    if shared.get("format") != FORMAT:
        raise ValueError(f"write_checkpoint: train.pt needs format {FORMAT} (cgx.train.checkpoint.shared_meta)")
    tmp = _tmp_folder(final)
    try:
        _prepare(tmp, None)
        _save_file(shared, tmp / SHARED_FILE)
        _publish(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final


def read_checkpoint(checkpoint: str | Path, say=None) -> dict:
    """``train.pt`` of a checkpoint folder as format ``FORMAT``, after checking that it is a cgx checkpoint
    of a format this code reads (``READS``); an older one is converted (``upgrade``) and ``say`` (default:
    print to stderr; None-returning callable) is told once what was converted. (``resolve`` checks the
    folder against its manifest.)"""
    path = Path(checkpoint) / SHARED_FILE
    shared = load_file(path)
    found = shared.get("format") if isinstance(shared, dict) else None
    if found not in READS:
        raise CheckpointError(f"{path}: checkpoint format {found!r}, this cgx reads formats "
                              f"{', '.join(map(str, READS))}; use the cgx version that wrote it, or start a new "
                              f"train.run_dir")
    if found != FORMAT:
        note = upgrade(shared, path)
        (say or (lambda text: print(text, file=sys.stderr)))(note)
    for key in ("step", "config", "groups"):
        if key not in shared:
            raise CheckpointError(f"{path}: not a complete cgx checkpoint (no {key!r} entry)")
    if not isinstance(shared["groups"], dict) or "generators" not in shared["groups"]:
        raise CheckpointError(f"{path}: not a complete cgx checkpoint (no 'generators' group)")
    return shared


def upgrade(shared: dict, path: Path) -> str:
    """A format-1 ``train.pt`` (``shared``, changed in place) as format 2; returns what was converted, in one line.
    Format 1 held the two groups at the top (``generators``, ``discriminators``) and their schedules in one
    entry (``schedule``: ``{generators: ..., discriminators: ...}``); DeepSpeed's own checkpoints were already
    in folders named by group."""
    if not isinstance(shared.get("generators"), dict):
        raise CheckpointError(f"{path}: not a complete cgx checkpoint of format 1 (no 'generators' entry)")
    moved = [name for name in ("generators", "discriminators") if name in shared]
    shared["groups"] = {name: shared.pop(name) for name in moved}
    schedule = shared.pop("schedule", None)
    if schedule is not None:
        if not isinstance(schedule, dict):
            raise CheckpointError(f"{path}: its 'schedule' entry is a {type(schedule).__name__}, not a mapping")
        shared["schedules"] = dict(schedule)
    shared["format"] = FORMAT
    return (f"cgx: {shown(path)}: checkpoint format 1 read as format {FORMAT}: its {' and '.join(moved)} as the "
            f"network groups of those names{', its schedule as one per group' if schedule is not None else ''}")


@dataclass
class GeneratorWeights:
    """What inference needs of a checkpoint: the generator pair's plain weights and its recipe."""

    checkpoint: Path
    step: int
    config: dict
    """The recipe the run was trained with (as ``Config.to_dict``)."""
    state: dict
    """The generator pair's state dict (``G.*``, ``F.*``), whatever the strategy that wrote it."""
    discriminators: dict | None = None
    """The discriminator group's state dict (None where the run had none)."""
    groups: dict | None = None
    """Every network group's plain weights by name (``generators`` raw, whatever ``weights`` says)."""
    weights: str = "raw"
    """Which generator weights ``state`` holds: ``raw`` (the trained ones) or ``ema`` (their average)."""


WEIGHTS = ("auto", "ema", "raw")
"""Which generator weights a reader takes: ``auto`` (the EMA where the run kept one, ``train.ema``),
``ema`` or ``raw``."""


def read_generators(path: str | Path, weights: str = "auto") -> GeneratorWeights:
    """The generator weights of a checkpoint folder, its ``train.pt``, or a run folder's newest good
    checkpoint (manifest and format checked); ``weights`` picks raw or EMA weights (``WEIGHTS``)."""
    if weights not in WEIGHTS:
        raise CheckpointError(f"--weights {weights!r}: accepted: {', '.join(WEIGHTS)}")
    ckpt, shared = _read_newest(path)
    try:
        groups = {name: group["module"] for name, group in shared["groups"].items()}
        gens = groups["generators"]
        discs = groups.get("discriminators")
        ema = shared.get("ema")
        ema = ema["weights"] if ema is not None else None
    except (TypeError, AttributeError, KeyError):
        raise CheckpointError(f"{ckpt / SHARED_FILE}: no weights of some network group in it "
                              f"(groups.<name>.module)") from None
    if weights == "ema" and ema is None:
        raise CheckpointError(f"{ckpt / SHARED_FILE}: --weights ema, but this run kept no average of its weights "
                              f"(train.ema was not set); use --weights raw (or auto)")
    use_ema = ema is not None and weights != "raw"
    return GeneratorWeights(ckpt, int(shared["step"]), shared["config"], ema if use_ema else gens, discs, groups,
                            "ema" if use_ema else "raw")


READ_TRIES = 3
"""How often a reader takes a run's newest checkpoint again when the one it chose was replaced while it
read it (a running training pruning its older checkpoints, or saving the same step again)."""


def _read_newest(path: str | Path) -> tuple[Path, dict]:
    """``resolve`` then ``read_checkpoint``; a checkpoint that is gone once it failed to read was
    replaced, not damaged: taken again from a run or checkpoints folder, said so for a checkpoint named."""
    for attempt in range(READ_TRIES):
        ckpt = resolve(path)
        try:
            return ckpt, read_checkpoint(ckpt)
        except CheckpointError:
            if (ckpt / SHARED_FILE).is_file():
                raise
            named = Path(path).resolve() in (ckpt.resolve(), (ckpt / SHARED_FILE).resolve())
            if named or attempt + 1 == READ_TRIES:
                raise CheckpointError(f"checkpoint {ckpt} was removed while it was read (a training run replaced it "
                                      f"with a newer one?); name the run folder to read its newest checkpoint") from None
    raise AssertionError("unreachable")


class Stateful(Protocol):
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


class Group:
    """Several stateful parts saved as one entry: ``{name: part.state_dict()}`` (the network groups, their
    schedules). Parts with state of their own in the checkpoint folder (``save_sharded``) write and read it."""

    def __init__(self, what: str = "part", **parts: Stateful) -> None:
        self.what = what
        self.parts = parts

    def state_dict(self) -> dict:
        return {name: part.state_dict() for name, part in self.parts.items()}

    def load_state_dict(self, state: dict) -> None:
        missing = [name for name in self.parts if name not in state]
        if missing:
            raise ValueError(f"no {self.what} {missing[0]!r} in it (it has {', '.join(map(str, state)) or 'none'})")
        for name, part in self.parts.items():
            try:
                part.load_state_dict(state[name])
            except (RuntimeError, KeyError, ValueError) as e:
                raise ValueError(f"{self.what} {name!r}: {_first_line(e)}") from None

    def save_sharded(self, folder: Path) -> None:
        for part in self.parts.values():
            if hasattr(part, "save_sharded"):
                part.save_sharded(folder)

    def load_sharded(self, folder: Path) -> None:
        for part in self.parts.values():
            if hasattr(part, "load_sharded"):
                part.load_sharded(folder)


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
        with its ``meta`` entries (step, format, ...) beside the parts. A failure on any rank (disk
        full, ...) raises CheckpointError on every rank and leaves the previous checkpoints as they were."""
        s = self.strategy
        final = self.folder / step_name(step)
        tmp = _tmp_folder(final)
        error = None
        if s.is_main:
            error = self._attempt(lambda: _prepare(tmp, self.latest()))
        self._agree(error, tmp)
        for part in self.shared.values():
            if hasattr(part, "save_sharded"):
                part.save_sharded(tmp)  # collective itself: not wrapped
        error = self._attempt(lambda: _save_file({**rank_meta, **_states(self.per_rank)}, tmp / rank_file(s.rank)))
        if s.is_main and error is None:
            error = self._attempt(lambda: _save_file({**meta, **_states(self.shared)}, tmp / SHARED_FILE))
        self._agree(error, tmp)
        if s.is_main:
            error = self._attempt(lambda: self._publish(tmp, final, step))
        self._agree(error, tmp)
        return final

    def _publish(self, tmp: Path, final: Path, step: int) -> None:
        _publish(tmp, final)
        for stale in list_checkpoints(self.folder)[: -self.keep]:
            shutil.rmtree(stale, ignore_errors=True)

    @staticmethod
    def _attempt(fn) -> BaseException | None:
        try:
            fn()
        except Exception as e:  # every rank must learn of it, or the others wait forever
            return e
        return None

    def _agree(self, error: BaseException | None, tmp: Path) -> None:
        """Collective: every rank learns whether any rank failed, and raises if so."""
        s = self.strategy
        failed = s.all_reduce(torch.tensor([int(error is not None)], device=s.device), "max").item()
        if not failed:
            return
        if s.is_main:
            shutil.rmtree(tmp, ignore_errors=True)  # a leftover would keep the disk full
        latest = self.latest()
        if error is None:
            raise CheckpointError(f"writing the checkpoint failed on another rank (see its error); "
                                  f"the last good one is {latest}")
        if getattr(error, "errno", None) == errno.ENOSPC:
            raise CheckpointError(f"no space left on device for a checkpoint in {self.folder} ({error.strerror}); "
                                  f"free some space and run the same command again to resume from {latest}")
        raise CheckpointError(f"cannot write a checkpoint in {self.folder}: {error}; the last good one is {latest}")

    def read(self, path: Path) -> tuple[dict, dict | None]:
        """The shared file (format checked) and this rank's file (None if absent)."""
        own = path / rank_file(self.strategy.rank)
        say = None if self.strategy.is_main else (lambda text: None)  # rank 0 says what it converted
        return read_checkpoint(path, say), (load_file(own) if own.is_file() else None)

    def load_shared(self, path: Path, state: dict) -> None:
        """Collective: every shared part from ``state`` (and its sharded state from ``path``)."""
        for name, part in self.shared.items():
            try:
                part.load_state_dict(state[name])
                if hasattr(part, "load_sharded"):
                    part.load_sharded(path)
            except (RuntimeError, KeyError, ValueError) as e:
                what = _first_line(e) if isinstance(part, Group) else f"{name}: {_first_line(e)}"
                raise CheckpointError(
                    f"checkpoint {path} does not match the recipe's {what} ... "
                    f"Use the recipe the run was trained with ({path / SHARED_FILE} holds it), or a new train.run_dir."
                ) from None

    def load_rank(self, path: Path, state: dict) -> None:
        for name, part in self.per_rank.items():
            try:
                part.load_state_dict(state[name])
            except (RuntimeError, KeyError, ValueError) as e:
                raise CheckpointError(f"checkpoint {path / rank_file(self.strategy.rank)}: cannot restore {name}: {e}") from None


def _first_line(e: BaseException) -> str:
    text = e.args[0] if isinstance(e, KeyError) and e.args and isinstance(e.args[0], str) else str(e)
    return text.splitlines()[0] if text else repr(e)


def _states(parts: Mapping[str, Stateful]) -> dict:
    return {name: part.state_dict() for name, part in parts.items()}
