"""Weights & Biases (``pip install 'cgx[wandb]'``): W&B's files in ``RUN/wandb/``, the run's id in
``RUN/wandb/cgx-run.json``, so that a resumed run continues the same W&B run (a launch at step 0 is a
new run, with a new id).

Offline (``WANDB_MODE=offline`` or ``mode: offline``: no network, no account) each launch leaves an
``RUN/wandb/offline-run-<time>-<id>/`` folder; ``wandb sync RUN/wandb/offline-run-*`` uploads them
later, in order, into one run. A resumed run logs again every step after its checkpoint: the steps of
each series W&B already holds are skipped (``cgx-run.json`` keeps the last one of each), so no step
is logged twice. Scalars, image grids and events are rows of the run's history at their step
(``checkpoint/path``, ``best/metric``, ``best/value``, ``best/checkpoint``; the best also in the
run's summary); the recipe is the run's config."""
from __future__ import annotations

import secrets
import string
from typing import Any, Literal, Mapping, Optional

import numpy as np

from cgx.extras import require
from cgx.plugins import hookimpl
from cgx.plugins.types import LogRun

from .run_record import RunRecord


def new_id() -> str:
    """A new W&B run id: 12 characters of [a-z0-9], as W&B's own ids."""
    return "".join(secrets.choice(string.ascii_lowercase + string.digits) for _ in range(12))


class WandbLogger:
    def __init__(self, project: str, entity: Optional[str], name: Optional[str], mode: Optional[str]) -> None:
        self.project, self.entity, self.name, self.mode = project, entity, name, mode
        self.run = None

    def open(self, run: LogRun) -> None:
        import wandb

        self.wandb = wandb
        folder = run.folder.wandb
        folder.mkdir(parents=True, exist_ok=True)
        self.record = RunRecord.load(run.folder.logger_run(folder))
        run_id = (self.record.get("id") if run.start_step else None) or new_id()  # step 0: a new run
        self.run = self.wandb.init(project=self.project, entity=self.entity, name=self.name or run.name,
                                   id=run_id, resume="allow", dir=str(run.folder.root), mode=self.mode)
        if self.record.get("id") != self.run.id:
            self.record.start(id=self.run.id, project=self.project, entity=self.entity)

    def _log(self, step: int, values: Mapping[str, Any], series: Optional[str] = None) -> None:
        """``values`` at ``step`` in one history row, less what W&B holds: each key is a series, or with
        ``series`` the whole call is one."""
        if series is not None:
            new = values if self.record.new(series, step) else {}
        else:
            new = {k: v for k, v in values.items() if self.record.new(k, step)}
        if new:
            self.run.log(dict(new), step=step)
            self.record.note([series] if series is not None else new, step)

    def recipe(self, config: Mapping[str, Any]) -> None:
        if self.record.new("recipe", 0):
            self.run.config.update(dict(config), allow_val_change=True)
            self.record.note(["recipe"], 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self._log(step, values)

    def image(self, step: int, tag: str, grid: np.ndarray) -> None:
        if self.record.new(f"image/{tag}", step):
            self._log(step, {tag: self.wandb.Image(grid)}, series=f"image/{tag}")

    def event(self, step: int, name: str, fields: Mapping[str, Any]) -> None:
        if self.record.new(f"event/{name}", step):
            self._log(step, {f"{name}/{k}": v for k, v in fields.items()}, series=f"event/{name}")
            if name == "best":
                self.run.summary.update({f"best/{k}": v for k, v in fields.items()})

    def close(self) -> None:
        if self.run is not None:
            self.run.finish()
            self.run = None
            if self.wandb.run is None:  # no other run of this process: wait until W&B's files are written
                self.wandb.teardown()


def build_wandb(project: str = "cgx", entity: Optional[str] = None, name: Optional[str] = None,
                mode: Optional[Literal["online", "offline", "disabled"]] = None) -> WandbLogger:
    """``project``, ``entity``: where the run goes; ``name``: the run's display name (default: the run
    folder's name); ``mode``: online, offline or disabled (default: ``WANDB_MODE``, else W&B's own)."""
    require("wandb", extra="wandb", what="logger wandb")
    return WandbLogger(project, entity, name, mode)


@hookimpl
def cgx_register_loggers(register):
    register("wandb", build_wandb)
