"""Distribution lives here and only here: the trainer talks to a strategy object."""
from .ddp import DDPStrategy, PrecisionError
from .env import WorldInfo, world_info_from_env


def build_strategy(dist_cfg, precision: str, world: WorldInfo | None = None):
    """The strategy a recipe's ``dist`` section asks for."""
    world = world or world_info_from_env()
    if dist_cfg.strategy == "ddp":
        return DDPStrategy(world, backend=dist_cfg.backend, precision=precision, timeout_min=dist_cfg.timeout_min)
    raise ValueError(f"dist.strategy={dist_cfg.strategy!r} is not supported; allowed: ddp")


__all__ = ["DDPStrategy", "PrecisionError", "WorldInfo", "build_strategy", "world_info_from_env"]
