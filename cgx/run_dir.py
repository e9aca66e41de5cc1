"""The run folder: every path a run writes, named once.

    RUN/config.yaml        the resolved recipe (written when training starts)
    RUN/checkpoints/       step_NNNNNNNN/ checkpoints (cgx.train.checkpoint)
    RUN/best/              the best checkpoint by eval.metric, and best.json (cgx.eval.periodic)
    RUN/eval/              step_NNNNNNNN.json evaluation records (cgx eval, evaluation during training),
                           step_NNNNNNNN/index.html their results pages, images beside them (cgx.eval.page)
    RUN/tb/                TensorBoard event files (logger tensorboard)
    RUN/log.jsonl          one JSON record a line (logger jsonl); RUN/log_images/ its image grids
    RUN/wandb/             W&B's files (logger wandb: offline runs to `wandb sync`) and cgx-run.json (the run id)
    RUN/mlflow/            MLflow's local store (mlflow.db, artifacts/) and cgx-run.json (run id, tracking URI)
    RUN/logs/NAME/         the folder of a logger plugin that is not built in
    RUN/STOPPED            written when a run stopped on request (removed by the next launch)
    RUN/LOCK               held by the training process (cgx.train.lock)
    RUN/STOP               a request to stop at the next step boundary (cgx.train.stop)
    RUN/replaced-<time>/   a previous run moved aside by train.start_over

Everything a run produces (``RUN_PARTS``) moves aside together: a part added here is one that
``train.start_over`` can never leave behind for the next run to mistake for its own.

The run folder is cgx's only where cgx made it (``RunDir.claim``): a new or empty folder, or one
holding cgx's own record of a run (a ``config.yaml`` carrying ``cgx.outputs.CONFIG_MARK``, or
checkpoints). A run never writes, prunes or moves anything through a symbolic link: a part of the
run (or an entry of its checkpoints/, best/ or eval/) that is a link is refused, naming it
(``RunDir.check_links``), before anything is written.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

from .errors import ConfigError, SetupError

CONFIG = "config.yaml"
CHECKPOINTS = "checkpoints"
BEST = "best"
EVAL = "eval"
TENSORBOARD = "tb"
JSONL = "log.jsonl"
JSONL_IMAGES = "log_images"
WANDB = "wandb"
MLFLOW = "mlflow"
LOGS = "logs"
LOGGER_RUN = "cgx-run.json"
STOPPED = "STOPPED"
LOCK = "LOCK"
STOP = "STOP"
REPLACED_PREFIX = "replaced-"
PAGE = "index.html"

HELD = (LOCK, STOP)
"""Files cgx makes in a run folder before its record (``config.yaml``) is written: a folder holding
only these (and ``replaced-*`` folders) is still a new one."""

SCANNED = (CHECKPOINTS, BEST, EVAL)
"""The run's folders whose entries cgx writes, prunes and replaces itself: none may be a link."""

RUN_PARTS = (CONFIG, CHECKPOINTS, BEST, EVAL, TENSORBOARD, JSONL, JSONL_IMAGES, WANDB, MLFLOW, LOGS, STOPPED)
"""What one run writes into its folder: moved aside as a whole by ``RunDir.move_aside``."""


def step_name(step: int) -> str:
    """``step_00001000``: a checkpoint folder's (and an evaluation record's) name for ``step``."""
    return f"step_{step:08d}"


def page_of(record: str | Path) -> Path:
    """The results page of an evaluation record, in a folder beside it named as it is without its
    suffix: ``step_N.json`` -> ``step_N/index.html`` (``--output x.json`` -> ``x/index.html``)."""
    record = Path(record)
    folder = record.with_suffix("") if record.suffix else record.with_name(f"{record.name}.page")
    return folder / PAGE


class RunDir:
    """The paths of one run folder. Creating one touches nothing on disk."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"RunDir({str(self.root)!r})"

    config = property(lambda self: self.root / CONFIG)
    checkpoints = property(lambda self: self.root / CHECKPOINTS)
    best = property(lambda self: self.root / BEST)
    eval = property(lambda self: self.root / EVAL)
    tensorboard = property(lambda self: self.root / TENSORBOARD)
    jsonl = property(lambda self: self.root / JSONL)
    jsonl_images = property(lambda self: self.root / JSONL_IMAGES)
    wandb = property(lambda self: self.root / WANDB)
    mlflow = property(lambda self: self.root / MLFLOW)
    stopped = property(lambda self: self.root / STOPPED)
    lock = property(lambda self: self.root / LOCK)
    stop = property(lambda self: self.root / STOP)

    def checkpoint(self, step: int) -> Path:
        return self.checkpoints / step_name(step)

    def logger_run(self, folder: Path) -> Path:
        """The file in a logger's folder that names its run on a tracking service (id, URI), so that a
        resumed run continues it: ``RUN/wandb/cgx-run.json``, ``RUN/mlflow/cgx-run.json``."""
        return folder / LOGGER_RUN

    def logger_dir(self, name: str) -> Path:
        """``RUN/logs/NAME/``: the folder of logger plugin ``name`` (one that is not built in)."""
        return self.root / LOGS / name

    def eval_record(self, step: int) -> Path:
        return self.eval / f"{step_name(step)}.json"

    def eval_page(self, step: int) -> Path:
        return page_of(self.eval_record(step))

    def parts(self) -> list[Path]:
        """The parts of a run present in this folder."""
        return [self.root / name for name in RUN_PARTS if (self.root / name).exists()]

    def is_run(self) -> bool:
        """The folder holds cgx's record of a run: a ``config.yaml`` cgx wrote, or checkpoints."""
        from .outputs import written_by_cgx

        if written_by_cgx(self.config):
            return True
        folder = self.checkpoints
        return folder.is_dir() and not folder.is_symlink() and any(
            p.name.startswith("step_") for p in folder.iterdir())

    def check_links(self) -> None:
        """SetupError naming the first part of the run (``RUN_PARTS``, ``LOCK``, ``STOP``), or entry
        directly inside a folder whose entries cgx itself writes, prunes and replaces (``SCANNED``:
        ``checkpoints/step_N``, ``eval/step_N.json`` ...), that is a symbolic link: a run writes,
        prunes and moves only what it made, never through a link. (Inside a logger's folder the
        logger's library keeps its own links: W&B's ``wandb/latest-run``.)"""
        for name in (*RUN_PARTS, LOCK, STOP):
            part = self.root / name
            refuse_link(part)
            if name in SCANNED and part.is_dir():
                for entry in part.iterdir():
                    refuse_link(entry)

    def claim(self, where: str, data_folders: Iterable[str | Path] = ()) -> None:
        """Before a run writes anything here: ConfigError (naming ``where``, the recipe) when the folder
        is the filesystem root or the home folder, a file, inside one of ``data_folders`` (the run's
        own training images), or an existing folder holding files but no run of cgx's; SetupError when
        a part of the run is a symbolic link (``check_links``)."""
        root = self.root
        real = Path(os.path.realpath(root))
        key = f"{where}: train.run_dir {root}"
        if real == Path(real.anchor) or real == Path(os.path.realpath(Path.home())):
            what = "the filesystem root" if real == Path(real.anchor) else "your home folder"
            raise ConfigError(f"{key} is {what}: a run writes config.yaml, checkpoints/ and logs there; "
                              f"set train.run_dir to a folder of its own (e.g. runs/NAME)")
        for folder in data_folders:
            data = Path(os.path.realpath(folder))
            if real == data or data in real.parents:
                raise ConfigError(f"{key} is inside the run's training images {folder}: the images cgx logs "
                                  f"there would be read as training data; set train.run_dir to a folder outside it")
        if root.is_symlink() and not root.exists():
            raise ConfigError(f"{key} is a symbolic link to nothing ({os.readlink(root)}); "
                              f"set train.run_dir to a folder")
        if root.exists() and not root.is_dir():
            raise ConfigError(f"{key} is a file, not a folder; set train.run_dir to a new folder")
        self.check_links()
        if root.is_dir() and not self.is_run():
            foreign = sorted(p for p in root.iterdir()
                             if p.name not in HELD and not p.name.startswith(REPLACED_PREFIX))
            if foreign:
                more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
                raise ConfigError(f"{key} is a folder cgx did not make: it holds {foreign[0]}{more} and no run of "
                                  f"cgx's (no config.yaml written by cgx, no checkpoints/); a run writes and replaces "
                                  f"files there: set train.run_dir to a new or empty folder")

    def move_aside(self) -> Path | None:
        """Move every part of the run in this folder into a new ``replaced-<date-time>/`` inside it
        (never deleting anything) and return that folder; None when there was nothing to move."""
        parts = self.parts()
        if not parts:
            return None
        stamp = time.strftime(f"{REPLACED_PREFIX}%Y%m%d-%H%M%S")
        target, n = self.root / stamp, 1
        while target.exists():
            n += 1
            target = self.root / f"{stamp}.{n}"
        self.check_links()
        target.mkdir()
        for p in parts:
            os.replace(p, target / p.name)
        return target

    @classmethod
    def of_checkpoint(cls, checkpoint: str | Path) -> "RunDir":
        """The run folder a checkpoint folder belongs to: ``RUN/checkpoints/step_N`` and
        ``RUN/best/step_N`` give ``RUN``; any other checkpoint folder gives its parent."""
        checkpoint = Path(checkpoint)
        parent = checkpoint.parent
        return cls(parent.parent if parent.name in (CHECKPOINTS, BEST) else parent)


def refuse_link(path: str | Path) -> None:
    """SetupError when ``path`` is a symbolic link (``lstat``: the link itself, wherever it points)."""
    path = Path(path)
    if path.is_symlink():
        raise SetupError(f"{path} is a symbolic link (to {os.readlink(path)}): cgx writes only what it made and "
                         f"never through a link; replace the link with the folder or file itself, or choose "
                         f"another path")
