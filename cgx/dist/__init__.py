"""Distribution lives here and only here: the trainer talks to a strategy object
(``wrap``, ``autocast``, ``all_reduce_mean``, ``barrier``, ``save_sharded``, ``close``) and to
the trainables it returns (``module``, ``raw``, ``optimizer``, ``backward``, ``step``,
``state_dict``, ``load_state_dict``)."""
from .base import PrecisionError, Strategy
from .ddp import DDPStrategy
from .env import WorldInfo, world_info_from_env


def build_strategy(dist_cfg, train_cfg, world: WorldInfo | None = None) -> Strategy:
    """The strategy a recipe's ``dist`` section asks for."""
    world = world or world_info_from_env()
    common = dict(backend=dist_cfg.backend, precision=train_cfg.precision, timeout_min=dist_cfg.timeout_min)
    if dist_cfg.strategy == "ddp":
        return DDPStrategy(world, **common)
    if dist_cfg.strategy == "deepspeed":
        try:
            from .deepspeed import DeepSpeedStrategy
        except ImportError as e:
            raise PrecisionError(f"dist.strategy=deepspeed needs the deepspeed package ({e}); pip install deepspeed") from e
        return DeepSpeedStrategy(world, **common, zero_stage=dist_cfg.zero_stage,
                                 offload_optimizer=dist_cfg.offload_optimizer, batch_size=train_cfg.batch_size)
    raise PrecisionError(f"dist.strategy={dist_cfg.strategy!r} is not supported; allowed: ddp, deepspeed")


__all__ = ["DDPStrategy", "PrecisionError", "Strategy", "WorldInfo", "build_strategy", "world_info_from_env"]
