"""The per-rank state of a checkpoint written by N ranks, resumed on M (a world-size change).

What carries over (docs/reliability.md, "What survives a world-size change"):

- networks, optimizers, lr schedule, step: shared state (``train.pt``); DeepSpeed's ZeRO-sharded
  optimizer state is resharded (``cgx.distributed.deepspeed``).
- image pools: the pools every old rank saved are merged into one global pool and each new rank takes
  its share (the buffer's optional ``merge_states`` / ``load_share``, ``cgx.plugins.types.ResizableBuffer``;
  the built-in rule is in ``plugins/buffers/image_pool.py``). A buffer without them starts empty.
- random streams (Python, NumPy, torch, each buffer's own generator): reseeded from (seed, step, rank),
  ``cgx.train.rng.stream_seed``, so the resumed run does not depend on the old rank count.
- the method's other per-rank state (none in the built-in methods) starts fresh.
"""
from __future__ import annotations

from typing import Sequence

from .rng import seed_everything, stream_seed


class Buffers:
    """Every image buffer the method built, as one per-rank checkpoint part (``buffers``): the copy a
    resume on another world size redistributes. (The method's own state holds them too; the image pool
    hands out the same tensors to both, so a checkpoint stores its images once.)"""

    missing_ok = True
    """Checkpoints written before this part existed resume without it (the method restores its buffers)."""

    def __init__(self, buffers: Sequence) -> None:
        self.buffers = list(buffers)

    def state_dict(self) -> dict:
        return {"pools": [b.state_dict() for b in self.buffers]}

    def load_state_dict(self, state: dict) -> None:
        pools = state["pools"]
        if len(pools) != len(self.buffers):
            raise ValueError(f"{len(pools)} image buffers saved, the method builds {len(self.buffers)}")
        for buffer, pool in zip(self.buffers, pools):
            buffer.load_state_dict(pool)


def resizable(buffer) -> bool:
    return callable(getattr(buffer, "merge_states", None)) and callable(getattr(buffer, "load_share", None))


def carry_over(buffers: Sequence, saved: Sequence[dict | None] | None, seed: int, step: int, rank: int,
               world_size: int) -> str:
    """Reseed this rank's random streams from (``seed``, ``step``, ``rank``) and give each buffer its
    share of the global pool made of ``saved`` (every old rank's ``Buffers`` state, in rank order; None:
    none saved, e.g. an imported checkpoint). Returns what happened to the pools, in words (the same on
    every rank)."""
    seed_everything(stream_seed(seed, step, rank))
    if not buffers:
        return "no image pools"
    complete = saved is not None and all(s is not None and len(s["pools"]) == len(buffers) for s in saved)
    if not complete:
        return "image pools start fresh (none saved)"
    if not all(resizable(b) for b in buffers):
        names = sorted({type(b).__name__ for b in buffers if not resizable(b)})
        return (f"image pools start fresh (the buffer {', '.join(names)} has no merge_states/load_share "
                f"to carry its pool over)")
    for i, buffer in enumerate(buffers):
        pool = buffer.merge_states([s["pools"][i] for s in saved])
        buffer.load_share(pool, rank, world_size, stream_seed(seed, step, rank, stream=1 + i))
    n = len(saved)
    return f"image pools of the {n} saving rank{'s' if n != 1 else ''} merged into one and dealt to {world_size}"


def change_reason(written_by: int, world_size: int, has_rank_state: bool) -> str:
    """Why a resumed run cannot restore its ranks' own state as saved."""
    if not has_rank_state and written_by == world_size:
        return "no per-rank state in it (cgx import writes none: networks and optimizers only)"
    return f"written by {written_by} rank{'s' if written_by != 1 else ''}, this run has {world_size}"
