"""The global batch of a run and the gradient accumulation that meets it on this world size.

``train.global_batch_size`` (images per domain per optimizer step over all ranks) is a property of
the run, not of the allocation: unset, it is ``batch_size x world size`` at the first launch and a
resumed run keeps its checkpoint's. Each rank then calls the method's step on
``accumulation = global / (batch_size x ranks)`` micro-batches per optimizer step.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError


@dataclass(frozen=True)
class GlobalBatch:
    size: int
    """Images per domain per optimizer step, over all ranks."""
    accumulation: int
    """Micro-batches per rank and optimizer step."""
    changed_from: int | None = None
    """The checkpoint's global batch where the recipe set another one (the data position is then
    continued by step, not exactly)."""


def recorded_global_batch(shared: dict | None) -> int | None:
    """The global batch a checkpoint's run trained with (older checkpoints: its batch_size x world size);
    None for a checkpoint of step 0 (``cgx import`` writes one: nothing trained, nothing to keep)."""
    if not shared:
        return None
    data = shared.get("data")
    if isinstance(data, dict) and isinstance(data.get("global_batch"), int):
        return data["global_batch"]
    if not shared.get("step"):
        return None
    try:
        return int(shared["config"]["train"]["batch_size"]) * int(shared["world_size"])
    except (KeyError, TypeError, ValueError):
        return None


def resolve_global_batch(train_cfg, world_size: int, shared: dict | None = None,
                         where: str = "<recipe>") -> GlobalBatch:
    """The run's global batch and this world size's accumulation; a ConfigError (one line, naming the
    keys and what would fit) when the global batch is not a multiple of batch_size x ranks."""
    micro = train_cfg.batch_size
    recorded = recorded_global_batch(shared)
    size = train_cfg.global_batch_size or recorded or micro * world_size
    per_step = micro * world_size
    if size % per_step:
        origin = ("" if train_cfg.global_batch_size else
                  " (unset: the run's own, from its checkpoint)" if recorded else "")
        fits = [w for w in range(1, size // micro + 1) if (size // micro) % w == 0] if size % micro == 0 else []
        ranks = f"; world sizes that fit batch_size={micro}: {', '.join(map(str, fits))}" if fits else ""
        raise ConfigError(f"{where}: train.global_batch_size={size}{origin} is not a multiple of train.batch_size="
                          f"{micro} x {world_size} ranks = {per_step}: set train.global_batch_size to a multiple of "
                          f"{per_step}, or a train.batch_size that divides it over the ranks{ranks}")
    changed = recorded if train_cfg.global_batch_size and recorded and recorded != size else None
    return GlobalBatch(size, size // per_step, changed)
