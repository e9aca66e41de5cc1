"""Rank 0's log: every event goes to each configured logger (``logging.backends``, the ``logger`` plugin
kind); the progress bar and the console lines stay here. Every other rank gets a log that does nothing.

A logger that fails, at its start or on any later call (a tracking server that went away, a full disk),
is warned about once, naming it and the error, and left out for the rest of the launch: training goes
on, and the other loggers keep every step."""
from __future__ import annotations

import sys
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torchvision.utils import make_grid

from ..plugins.types import EVENTS, LogRun, Logger
from ..safe_text import shown


class NullLog:
    def recipe(self, config: Mapping[str, Any]) -> None: ...
    def scalars(self, step: int, values: dict) -> None: ...
    def images(self, step: int, tag: str, rows: list[torch.Tensor]) -> None: ...
    def event(self, step: int, name: str, **fields: Any) -> None: ...
    def progress(self, step: int, postfix: dict | None = None) -> None: ...
    def print(self, *args) -> None: ...
    def close(self) -> None: ...


class RunLog(NullLog):
    def __init__(self, loggers: Sequence[tuple[str, Logger]], run: LogRun, progress: bool = True) -> None:
        """``loggers``: (name, logger) built from the recipe, not yet opened; each is opened here."""
        from tqdm import tqdm

        self.bar = tqdm(total=run.total_steps, initial=run.start_step, unit="step", dynamic_ncols=True,
                        disable=not progress, file=sys.stderr, desc="train")
        self.loggers: dict[str, Logger] = dict(loggers)
        self._each("open", run)

    def _each(self, method: str, *args: Any) -> None:
        for name, logger in list(self.loggers.items()):
            try:
                getattr(logger, method)(*args)
            except Exception as e:  # noqa: BLE001 -- a logger never stops training
                del self.loggers[name]
                why = " ".join(str(e).split())[:300]
                self.bar.write(f"cgx: warning: logger {shown(name)} failed in {method}() "
                               f"({type(e).__name__}: {shown(why)}); "
                               f"training goes on without it for the rest of this launch"
                               + (f", logging to {', '.join(self.loggers)}" if self.loggers else ""), file=sys.stderr)
                if method != "close":
                    try:
                        logger.close()
                    except Exception:  # noqa: BLE001 -- it failed already; said once
                        pass

    def recipe(self, config: Mapping[str, Any]) -> None:
        self._each("recipe", config)

    def scalars(self, step: int, values: dict) -> None:
        self._each("scalars", step, {k: float(v) for k, v in values.items()})

    def images(self, step: int, tag: str, rows: list[torch.Tensor]) -> None:
        """Each row a batch of images in [-1, 1] (any channel count); one grid, a row per tensor, made once
        for every logger: (H, W, 3) uint8."""
        if self.loggers:
            self._each("image", step, tag, image_grid(rows))

    def event(self, step: int, name: str, **fields: Any) -> None:
        assert name in EVENTS, name
        self._each("event", step, name, fields)

    def progress(self, step: int, postfix: dict | None = None) -> None:
        self.bar.n = step
        if postfix is not None:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def print(self, *args) -> None:
        self.bar.write(" ".join(str(a) for a in args))

    def close(self) -> None:
        self.bar.close()
        self._each("close")


def image_grid(rows: list[torch.Tensor]) -> np.ndarray:
    """Rows of image batches in [-1, 1] as one (H, W, 3) uint8 grid, a row per batch; grey and N-channel
    images are shown as RGB (grey repeated, N bands by their first three)."""
    from ..data.decode import display_view

    n = min(r.shape[0] for r in rows)
    shown = [display_view(r[:n].detach().float().cpu()) for r in rows]
    grid = make_grid(torch.cat(shown), nrow=n, normalize=True, value_range=(-1, 1))
    return grid.mul(255).add_(0.5).clamp_(0, 255).to(torch.uint8).permute(1, 2, 0).numpy()
