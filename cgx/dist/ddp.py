"""DistributedDataParallel under torchrun (gloo on CPU, NCCL on GPU), or one plain process."""
from __future__ import annotations

import contextlib
import datetime
import gc

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from .env import WorldInfo

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(ValueError):
    pass


class DDPTrainable:
    def __init__(self, raw: nn.Module, optimizer: torch.optim.Optimizer, distributed: bool,
                 device: torch.device, scaler: torch.amp.GradScaler | None) -> None:
        self.raw = raw
        self.optimizer = optimizer
        self.scaler = scaler
        if distributed:
            ids = [device.index] if device.type == "cuda" else None
            self.module = DistributedDataParallel(raw, device_ids=ids)
        else:
            self.module = raw

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
        state = {"module": self.raw.state_dict(), "optimizer": self.optimizer.state_dict()}
        if self.scaler:
            state["scaler"] = self.scaler.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.raw.load_state_dict(state["module"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scaler and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])


class DDPStrategy:
    """Process group set-up, wrapping, collectives and tear-down in one place."""

    name = "ddp"

    def __init__(self, world: WorldInfo, *, backend: str = "auto", precision: str = "fp32",
                 timeout_min: int = 30) -> None:
        self.world = world
        if torch.cuda.is_available():
            self.device = torch.device("cuda", world.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        if precision == "fp16" and self.device.type != "cuda":
            raise PrecisionError("train.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
        self.precision = precision
        self.dtype = DTYPES[precision]
        if backend == "auto":
            backend = "nccl" if self.device.type == "cuda" else "gloo"
        self.backend = backend
        self._trainables: list[DDPTrainable] = []
        if world.distributed and not dist.is_initialized():
            dist.init_process_group(
                backend, rank=world.rank, world_size=world.world_size,
                timeout=datetime.timedelta(minutes=timeout_min),
                device_id=self.device if self.device.type == "cuda" else None,
            )

    @property
    def rank(self) -> int:
        return self.world.rank

    @property
    def world_size(self) -> int:
        return self.world.world_size

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    def wrap(self, raw: nn.Module, optimizer: torch.optim.Optimizer) -> DDPTrainable:
        scaler = torch.amp.GradScaler(self.device.type) if self.precision == "fp16" else None
        t = DDPTrainable(raw, optimizer, self.world.distributed, self.device, scaler)
        self._trainables.append(t)
        return t

    def autocast(self):
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def all_reduce_mean(self, t: torch.Tensor) -> torch.Tensor:
        if self.world.distributed:
            t = t.clone()
            dist.all_reduce(t, op=dist.ReduceOp.SUM)
            t /= self.world.world_size
        return t

    def barrier(self) -> None:
        if self.world.distributed:
            dist.barrier()

    def broadcast_object(self, obj):
        if not self.world.distributed:
            return obj
        box = [obj]
        dist.broadcast_object_list(box, src=0)
        return box[0]

    def close(self) -> None:
        """Drop the wrapped models and collect them *before* destroying the process group: with
        gloo, destroying it while DDP reducers are alive aborts the process at exit now and then
        ("terminate called without an active exception")."""
        for t in self._trainables:
            t.module = None
        self._trainables.clear()
        gc.collect()
        if self.world.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
