"""What every strategy shares: the device, the process group, collectives, tear-down."""
from __future__ import annotations

import datetime
import gc
import os
import warnings

import torch
import torch.distributed as dist

from ..errors import PrecisionError
from ..precision import DTYPES, autocast, cpu_has_bf16
from ..precision import resolve as resolve_precision
from .accumulation import UseAfterStep
from .env import WorldInfo

_OPS = {"sum": dist.ReduceOp.SUM, "mean": dist.ReduceOp.SUM, "min": dist.ReduceOp.MIN, "max": dist.ReduceOp.MAX}


def _attempt_store(world: WorldInfo, timeout: datetime.timedelta):
    """Under torchrun, the rendezvous store with keys prefixed by this restart attempt.

    The process group publishes each rank's address under fixed keys. After ``torchrun`` restarts
    failed workers, the store still holds the dead workers' addresses from the previous attempt,
    and a new rank that reads one before its peer overwrites it times out connecting to it (seen
    here with gloo: "connectFullMesh failed ... Connection refused"). A prefix per attempt keeps
    the attempts apart. Outside torchrun: None (the usual env:// set-up).

    The count is each agent's own: after an elastic node joined, the new node's workers count 0 while
    the others count their restarts. Without the agents' shared store
    (``TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1``, which elastic jobs need: docs/cluster.md) rank 0's worker
    hosts a new store on a new port every round, so there is nothing stale to keep apart and every
    worker uses one prefix."""
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    if restart is None or "MASTER_ADDR" not in os.environ:
        return None
    agent_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE", "").lower() == "true"
    store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world.world_size,
                          is_master=world.rank == 0 and not agent_store, timeout=timeout)
    return dist.PrefixStore(f"cgx/attempt_{restart}" if agent_store else "cgx/round", store)


class Strategy:
    """Subclasses implement ``wrap(raw, optimizer) -> Trainable``."""

    name = "base"
    accumulation = 1
    """Micro-batches per optimizer step (gradient accumulation); set before the groups are wrapped."""

    def __init__(self, world: WorldInfo, *, backend: str = "auto", precision: str = "fp32",
                 timeout_min: int = 30) -> None:
        self.world = world
        if torch.cuda.is_available():
            self.device = torch.device("cuda", world.local_rank)
            torch.cuda.set_device(self.device)
        else:
            self.device = torch.device("cpu")
        precision = resolve_precision(precision, self.device)
        if precision == "fp16" and self.device.type != "cuda":
            raise PrecisionError("train.precision=fp16 needs a CUDA device; on CPU use bf16 or fp32")
        if precision == "bf16" and self.device.type == "cpu" and not cpu_has_bf16():
            warnings.warn("train.precision=bf16 on a CPU without AMX or AVX512-BF16: bf16 is emulated and "
                          "runs 3-4x slower than fp32 here (benchmarks/bench_step.py); prefer fp32", stacklevel=2)
        self.precision = precision
        self.dtype = DTYPES[precision]
        self.backend = ("nccl" if self.device.type == "cuda" else "gloo") if backend == "auto" else backend
        self._trainables: list = []
        self._check: UseAfterStep | None = None  # the first accumulated micro-batch's (micro_batch)
        self._checked = False
        self._control = None  # a gloo group for host-side agreement (StopVote)
        if world.distributed and not dist.is_initialized():
            timeout = datetime.timedelta(minutes=timeout_min)
            dist.init_process_group(
                self.backend, rank=world.rank, world_size=world.world_size, timeout=timeout,
                store=_attempt_store(world, timeout),
                device_id=self.device if self.device.type == "cuda" else None,
            )
        if world.distributed:
            self._control = dist.new_group(backend="gloo")

    @property
    def rank(self) -> int:
        return self.world.rank

    @property
    def world_size(self) -> int:
        return self.world.world_size

    @property
    def is_main(self) -> bool:
        return self.world.is_main

    def micro_batch(self, slot: int) -> None:
        """The next call of the method's step is micro-batch ``slot`` (0 .. accumulation - 1) of its
        optimizer step: every trainable synchronises and steps at the last one only
        (``cgx.distributed.accumulation``). The first accumulated micro-batch also checks that no group
        is used after its own deferred step; ``micro_batch_done`` ends that check."""
        if self.accumulation > 1 and slot == 0 and not self._checked:
            self._checked = True
            self._check = UseAfterStep(self._trainables)
        for t in self._trainables:
            t.set_micro_batch(slot, self.accumulation)
            t.check = self._check

    def micro_batch_done(self) -> None:
        if self._check is not None:
            check, self._check = self._check, None
            for t in self._trainables:
                t.check = None
            check.finish(self.is_main, self.accumulation)

    def autocast(self):
        """The run's autocast context (``cgx.precision.autocast`` of its resolved precision)."""
        return autocast(self.precision, self.device)

    def all_reduce(self, t: torch.Tensor, op: str = "mean") -> torch.Tensor:
        """``t`` reduced over ranks (``sum``, ``mean``, ``min`` or ``max``); a new tensor."""
        t = t.clone()
        if self.world.distributed:
            dist.all_reduce(t, op=_OPS[op])
            if op == "mean":
                t /= self.world.world_size
        return t

    def all_gather_rows(self, t: torch.Tensor) -> torch.Tensor:
        """Every rank's ``t`` (any number of rows, the other dimensions equal) concatenated along
        dim 0 in rank order, on every rank; rows are neither duplicated nor dropped."""
        if not self.world.distributed:
            return t.clone()
        n = torch.tensor([t.shape[0]], dtype=torch.int64, device=t.device)
        counts = [torch.zeros_like(n) for _ in range(self.world.world_size)]
        dist.all_gather(counts, n)
        counts = [int(c.item()) for c in counts]
        most = max(counts)
        padded = t.new_zeros((most, *t.shape[1:]))
        padded[: t.shape[0]] = t
        parts = [torch.empty_like(padded) for _ in counts]
        dist.all_gather(parts, padded.contiguous())
        return torch.cat([p[:c] for p, c in zip(parts, counts)])

    def stop_vote(self) -> "StopVote":
        """Agreement of every rank on when to stop, without waiting for the device (see StopVote)."""
        return StopVote(self._control if self.world.distributed else None)

    def barrier(self) -> None:
        if self.world.distributed:
            dist.barrier()

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


class StopVote:
    """Do all ranks stop at this step? ``update(flag)`` is called once per step on every rank with
    this rank's stop request and returns the same answer on every rank.

    Across ranks the question travels as a CPU tensor on a gloo group of its own, so it never waits
    for the device, and it is answered one step late: each ``update`` returns the answer to the
    previous step's question (which had a whole step to arrive) and asks the next. In one process
    the answer is the flag itself, at once."""

    def __init__(self, group) -> None:
        self.group = group
        self.pending = None

    def update(self, flag: bool) -> bool:
        if self.group is None:
            return flag
        answer = self.finish()
        t = torch.tensor([int(flag)], dtype=torch.int32)
        self.pending = (dist.all_reduce(t, op=dist.ReduceOp.MAX, group=self.group, async_op=True), t)
        return answer

    def finish(self) -> bool:
        """Wait for the question in flight (every rank asked it) and return its answer."""
        if self.pending is None:
            return False
        work, t = self.pending
        self.pending = None
        work.wait()
        return bool(t.item())
