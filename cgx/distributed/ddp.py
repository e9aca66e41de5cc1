"""DistributedDataParallel under torchrun (gloo on CPU, NCCL on GPU), or one plain process."""
from __future__ import annotations

from pathlib import Path

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .base import Strategy


class DDPTrainable:
    """``self(...)`` runs DistributedDataParallel (or the bare network in one process);
    ``self.module`` is the bare network."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, distributed: bool,
                 device: torch.device, scaler: torch.amp.GradScaler | None, *,
                 gradient_as_bucket_view: bool = False) -> None:
        self.module = module
        self.optimizer = optimizer
        self.scaler = scaler
        if distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.wrapper: nn.Module | None = DistributedDataParallel(
                module, device_ids=ids, gradient_as_bucket_view=gradient_as_bucket_view)
        else:
            self.wrapper = module

    def __call__(self, *args, **kwargs):
        return self.wrapper(*args, **kwargs)

    def forward_bare(self, *args, **kwargs):
        """A forward pass of the bare network, outside DDP (a step on which the group does not update)."""
        return self.module(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler else loss).backward()

    def step(self) -> None:
        if self.scaler:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)

    def state_dict(self) -> dict:
        state = {"module": self.module.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.scaler:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])

    def save_sharded(self, folder: Path) -> None:
        pass

    def load_sharded(self, folder: Path) -> None:
        pass

    def release(self) -> None:
        self.wrapper = None


class DDPStrategy(Strategy):
    """``gradient_as_bucket_view`` (``auto``: on CUDA devices): DDP's own flag
    (``distributed.gradient_as_bucket_view``). Not DDP's ``static_graph``: with it, 2 ranks on gloo
    trained other weights than plain DDP after one CycleGAN step (off by 3e-2; measured)."""

    name = "ddp"

    def __init__(self, world, *, gradient_as_bucket_view: bool | str = "auto", **common) -> None:
        super().__init__(world, **common)
        auto = gradient_as_bucket_view == "auto"
        self.gradient_as_bucket_view = self.device.type == "cuda" if auto else bool(gradient_as_bucket_view)

    def wrap(self, module: nn.Module, optimizer: torch.optim.Optimizer, name: str = "") -> DDPTrainable:
        scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        t = DDPTrainable(module, optimizer, self.world.distributed, self.device, scaler,
                         gradient_as_bucket_view=self.gradient_as_bucket_view)
        self._trainables.append(t)
        return t
