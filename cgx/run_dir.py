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
"""
from __future__ import annotations

import os
import time
from pathlib import Path

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
        target.mkdir(parents=True)
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
