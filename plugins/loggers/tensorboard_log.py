"""TensorBoard event files in ``RUN/tb`` (the default logger): ``tensorboard --logdir RUN/tb``.

A resumed run writes a purge mark at the step after its checkpoint, so TensorBoard's reader drops the
records a previous launch made after it (the resumed run logs those steps again), and each step is
shown once; a run started at step 0 purges everything an earlier launch left."""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import yaml

from cgx.plugins import hookimpl
from cgx.plugins.types import LogRun


class TensorBoardLogger:
    def __init__(self) -> None:
        self.writer = None

    def open(self, run: LogRun) -> None:
        from torch.utils.tensorboard import SummaryWriter

        purge = run.start_step + 1 if run.start_step else 0
        self.writer = SummaryWriter(str(run.folder.tensorboard), purge_step=purge)

    def recipe(self, config: Mapping[str, Any]) -> None:
        text = yaml.safe_dump(dict(config), sort_keys=False)
        self.writer.add_text("recipe", "\n".join("    " + line for line in text.splitlines()), 0)

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def image(self, step: int, tag: str, grid: np.ndarray) -> None:
        self.writer.add_image(tag, grid, step, dataformats="HWC")

    def event(self, step: int, name: str, fields: Mapping[str, Any]) -> None:
        self.writer.add_text(f"events/{name}", ", ".join(f"{k}: {v}" for k, v in fields.items()), step)
        for key, value in fields.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                self.writer.add_scalar(f"{name}/{key}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.flush()
            self.writer.close()


def build_tensorboard() -> TensorBoardLogger:
    return TensorBoardLogger()


@hookimpl
def cgx_register_loggers(register):
    register("tensorboard", build_tensorboard)
