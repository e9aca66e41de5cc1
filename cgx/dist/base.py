"""What every strategy shares: the device, the process group, collectives, tear-down."""
from __future__ import annotations

import contextlib
import datetime
import gc
import os
import warnings
from pathlib import Path

import torch
import torch.distributed as dist

from .env import WorldInfo

DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class PrecisionError(ValueError):
    """A precision / device setting this machine cannot honour; names the recipe key."""


def _cpu_has_bf16() -> bool:
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(c() for c in checks if c is not None)


def _attempt_store(world: WorldInfo, timeout: datetime.timedelta):
    """Under torchrun, the rendezvous store with keys prefixed by this restart attempt.

    The process group publishes each rank's address under fixed keys. After ``torchrun`` restarts
    failed workers, the store still holds the dead workers' addresses from the previous attempt,
    and a new rank that reads one before its peer overwrites it times out connecting to it (seen
    here with gloo: "connectFullMesh failed ... Connection refused"). A prefix per attempt keeps
    the attempts apart. Outside torchrun: None (the usual env:// set-up)."""
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if restart is None or "MASTER_ADDR" not in os.environ:
        return None
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world.world_size,
                          is_master=world.rank == 0 and not agent_store, timeout=timeout)
    return dist.PrefixStore(f"cgx/attempt_{restart}", store)


class Strategy:
    """Subclasses implement ``wrap(raw, optimizer) -> Trainable``."""

    name = "base"

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
        if precision == "bf16" and self.device.type == "cpu" and not _cpu_has_bf16():
            warnings.warn("train.precision=bf16 on a CPU without AMX or AVX512-BF16: bf16 is emulated and "
                          "runs 3-4x slower than fp32 here (benchmarks/bench_step.py); prefer fp32", stacklevel=2)
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.backend = ("nccl" if self.device.type == "cuda" else "gloo") if backend == "auto" else backend
        self._trainables: list = []
        if world.distributed and not dist.is_initialized():
            timeout = datetime.timedelta(minutes=timeout_min)
            dist.init_process_group(
                self.backend, rank=world.rank, world_size=world.world_size, timeout=timeout,
                store=_attempt_store(world, timeout),
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

    def make_optimizer(self, params, cfg) -> torch.optim.Optimizer:
        """One optimizer for a network pair, from the recipe's ``optim`` section."""
        if cfg.name == "adam":
            return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))
        return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)

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

    def save_sharded(self, folder: Path) -> None:
        """Collective: state that each rank writes itself (DeepSpeed's ZeRO shards). None for DDP."""
        for t in self._trainables:
            t.save_sharded(folder)

    def close(self) -> None:
        """Drop the wrapped models and collect them *before* destroying the process group: with
        gloo, destroying it while DDP reducers are alive aborts the process at exit now and then
        ("terminate called without an active exception")."""
        for t in self._trainables:
            t.release()
        self._trainables.clear()
        gc.collect()
        if self.world.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()
