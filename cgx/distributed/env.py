"""Who am I: rank, local rank and world size from torchrun's environment, or SLURM's."""
from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class WorldInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def share(self, n: int) -> range:
        """This rank's contiguous part of ``n`` items: the parts of all ranks, in rank order, are
        ``range(n)`` exactly (sizes differ by at most one when ``n`` does not divide)."""
        return range(self.rank * n // self.world_size, (self.rank + 1) * n // self.world_size)


def world_info_from_env(env: dict | None = None) -> WorldInfo:
    """torchrun sets RANK/LOCAL_RANK/WORLD_SIZE; under plain ``srun`` fall back to SLURM_PROCID,
    SLURM_LOCALID and SLURM_NTASKS. Nothing set: one process."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        return WorldInfo(int(env["RANK"]), int(env.get("LOCAL_RANK", 0)), int(env["WORLD_SIZE"]))
    if "SLURM_PROCID" in env and "SLURM_NTASKS" in env and int(env["SLURM_NTASKS"]) > 1:
        return WorldInfo(int(env["SLURM_PROCID"]), int(env.get("SLURM_LOCALID", 0)), int(env["SLURM_NTASKS"]))
    return WorldInfo()
