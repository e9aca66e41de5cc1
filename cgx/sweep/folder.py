"""The sweep folder: every path a sweep writes, named once.

    SWEEP/sweep.json            cgx's record of the sweep (recipe, grids, points): its mark on the folder
    SWEEP/runs/NAME/            each point's run folder (a normal cgx run: config.yaml, checkpoints/, eval/)
    SWEEP/logs/NAME.log         what training and evaluating the point printed (appended on each launch)
    SWEEP/results.md            the table: per configuration, mean and (min..max) over its seeds
    SWEEP/results.csv           the same, one row per configuration and metric
    SWEEP/results.json          the same with every point's values, and the failed points
    SWEEP/index.html            the results page: the table, each run's own results page linked
    SWEEP/slurm/array.sbatch    the SLURM job array of the points not finished (--slurm)
    SWEEP/LOCK                  held by the cgx sweep running here (cgx.file_lock): one sweep at a time

The folder is cgx's only where cgx made it (``SweepDir.claim``): a new or empty folder, or one holding
a ``sweep.json`` cgx wrote. Nothing is written through a symbolic link: a part of the sweep that is
one is refused, naming it, before anything is written.
"""
from __future__ import annotations

import json
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from ..errors import SetupError, UsageError
from ..outputs import write_new_file
from ..run_dir import refuse_link

RECORD = "sweep.json"
MARK = "cgx sweep"
"""The record's ``"written_by"``: a folder whose sweep.json says this is a sweep folder cgx made."""
LOCK = "LOCK"
PARTS = ("runs", "logs", "slurm", LOCK, RECORD, "results.md", "results.csv", "results.json", "index.html")


class SweepDir:
    """The paths of one sweep folder. Creating one touches nothing on disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    record = property(lambda self: self.root / RECORD)
    runs = property(lambda self: self.root / "runs")
    logs = property(lambda self: self.root / "logs")
    slurm = property(lambda self: self.root / "slurm")
    table_md = property(lambda self: self.root / "results.md")
    table_csv = property(lambda self: self.root / "results.csv")
    table_json = property(lambda self: self.root / "results.json")
    page = property(lambda self: self.root / "index.html")

    def run(self, name: str) -> Path:
        return self.runs / name

    def log(self, name: str) -> Path:
        return self.logs / f"{name}.log"

    def read_record(self) -> dict | None:
        """The sweep's record, where cgx wrote one here (a regular file marked ``MARK``); else None."""
        path = self.record
        if path.is_symlink() or not path.is_file():
            return None
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return record if isinstance(record, dict) and record.get("written_by") == MARK else None

    def claim(self, recipe: str) -> None:
        """Before a sweep writes anything: UsageError (naming --out) when the folder is the filesystem root
        or the home folder, a file, a symbolic link, a folder holding files but no sweep of cgx's, or the
        sweep of another recipe; SetupError when a part of the sweep is a link."""
        root = self.root
        real = Path(os.path.realpath(root))
        if real == Path(real.anchor) or real == Path(os.path.realpath(Path.home())):
            raise UsageError(f"--out {root} is {'the filesystem root' if real == Path(real.anchor) else 'your home folder'}"
                             f": a sweep writes runs/, logs/ and its tables there; name a folder of its own")
        if root.is_symlink():
            raise UsageError(f"--out {root} is a symbolic link: cgx writes only what it made and never through a link; "
                             f"name the folder itself")
        if root.exists() and not root.is_dir():
            raise UsageError(f"--out {root} is a file, not a folder; name a new folder")
        for name in PARTS:
            refuse_link(root / name)
        if not root.is_dir() or not [p for p in root.iterdir() if p.name != LOCK]:
            return  # new, empty, or left by a sweep killed before it wrote its record
        record = self.read_record()
        if record is None:
            first = sorted(p for p in root.iterdir() if p.name != LOCK)[0]
            raise UsageError(f"--out {root} is a folder cgx did not make: it holds {first.name} and no sweep of cgx's "
                             f"(no {RECORD} written by cgx sweep); name a new or empty folder")
        if record.get("recipe") != recipe:
            raise UsageError(f"--out {root} holds the sweep of recipe {record.get('recipe')}, not {recipe}: "
                             f"name another folder for this recipe's sweep")

    def write_record(self, record: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_new_file(self.record, json.dumps({"written_by": MARK, **record}, indent=2) + "\n")

    @contextmanager
    def locked(self):
        """Hold ``SWEEP/LOCK`` while the sweep runs: a second ``cgx sweep`` on the folder is refused, naming
        the holder (the kernel drops the lock when its holder dies, however it dies)."""
        from .. import file_lock

        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root / LOCK

        def busy(holder: bytes) -> Exception:
            who = holder.decode("utf-8", "replace").strip() or "another process"
            return UsageError(f"--out {self.root} is in use by another cgx sweep ({who}); wait for it to end, or "
                              f"name another folder")

        fd = file_lock.take(path, busy, lambda e: SetupError(f"cannot lock {path}: {e.strerror}"))
        try:
            file_lock.write_holder(fd, f"pid {os.getpid()} on {socket.gethostname()}")
            yield
        finally:
            file_lock.release(path, fd)

    def make_parts(self) -> None:
        for folder in (self.runs, self.logs):
            refuse_link(folder)
            folder.mkdir(parents=True, exist_ok=True)
