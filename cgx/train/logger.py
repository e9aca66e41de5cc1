"""Rank 0 logs (TensorBoard, progress bar, console); every other rank gets a logger that does nothing."""
from __future__ import annotations

import sys

import torch
from torchvision.utils import make_grid

from ..run_dir import RunDir


class NullLogger:
    def scalars(self, step: int, values: dict) -> None: ...
    def images(self, step: int, tag: str, rows: list[torch.Tensor]) -> None: ...
    def progress(self, step: int, postfix: dict | None = None) -> None: ...
    def print(self, *args) -> None: ...
    def close(self) -> None: ...


class Logger(NullLogger):
    def __init__(self, run: RunDir, start_step: int, total_steps: int, progress: bool = True) -> None:
        from torch.utils.tensorboard import SummaryWriter
        from tqdm import tqdm

        self.writer = SummaryWriter(str(run.tensorboard), purge_step=start_step or None)
        self.bar = tqdm(total=total_steps, initial=start_step, unit="step", dynamic_ncols=True,
                        disable=not progress, file=sys.stderr, desc="train")

    def scalars(self, step: int, values: dict) -> None:
        for k, v in values.items():
            self.writer.add_scalar(k, v, step)

    def images(self, step: int, tag: str, rows: list[torch.Tensor]) -> None:
        """Each row a batch of images in [-1, 1] (any channel count); shown as one grid, a row per tensor."""
        from ..data.decode import rgb_view

        n = min(r.shape[0] for r in rows)
        # grey and N-channel domains are shown as RGB: grey repeated, N bands by their first three
        shown = [rgb_view(r[:n].detach().float().cpu(), [min(i, r.shape[1] - 1) for i in range(3)]) for r in rows]
        stacked = torch.cat(shown)
        grid = make_grid(stacked, nrow=n, normalize=True, value_range=(-1, 1))
        self.writer.add_image(tag, grid, step)

    def progress(self, step: int, postfix: dict | None = None) -> None:
        self.bar.n = step
        if postfix is not None:
            self.bar.set_postfix(postfix, refresh=False)
        self.bar.refresh()

    def print(self, *args) -> None:
        self.bar.write(" ".join(str(a) for a in args))

    def close(self) -> None:
        self.bar.close()
        self.writer.flush()
        self.writer.close()
