"""Distribution lives here and only here: the trainer talks to a strategy object
(``wrap``, ``autocast``, ``all_reduce``, ``all_gather_rows``, ``stop_vote``, ``barrier``, ``close``) and to the
trainables it returns (``trainable(...)`` for a forward pass that synchronises, ``module`` for the
bare network, ``optimizer``, ``backward``, ``step``, ``state_dict``, ``load_state_dict``)."""
from ..errors import PrecisionError, SetupError
from .base import Strategy
from .ddp import DDPStrategy
from .env import WorldInfo, world_info_from_env
from .trainable import Trainable

STRATEGIES = ("ddp", "deepspeed")


def build_strategy(dist_cfg, train_cfg, world: WorldInfo | None = None) -> Strategy:
    """The strategy a recipe's ``distributed`` section asks for."""
    world = world or world_info_from_env()
    common = dict(backend=dist_cfg.backend, precision=train_cfg.precision, timeout_min=dist_cfg.timeout_min)
    if dist_cfg.strategy == "ddp":
        return DDPStrategy(world, **common, gradient_as_bucket_view=dist_cfg.gradient_as_bucket_view)
    if dist_cfg.strategy == "deepspeed":
        try:
            from .deepspeed import DeepSpeedStrategy
        except ImportError as e:
            raise SetupError(f"distributed.strategy=deepspeed needs the deepspeed package ({e}); "
                             f"pip install deepspeed") from e
        return DeepSpeedStrategy(world, **common, zero_stage=dist_cfg.zero_stage, batch_size=train_cfg.batch_size,
                                 offload_optimizer=dist_cfg.offload_optimizer)
    raise SetupError(f"distributed.strategy={dist_cfg.strategy!r} is not supported; allowed: {', '.join(STRATEGIES)}")


__all__ = ["DDPStrategy", "PrecisionError", "STRATEGIES", "SetupError", "Strategy", "Trainable", "WorldInfo",
           "build_strategy", "world_info_from_env"]
