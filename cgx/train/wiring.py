"""One wiring of the training step from a recipe: the method's network groups (built, initialised,
placed, compiled, each wrapped by the strategy with its own optimizer) and its step. ``Trainer`` trains
with it and ``benchmarks/bench_step.py`` measures it, so the benchmark times exactly what trains.
Nothing here names a method: each is a plugin (``method`` in the recipe)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..config import Config
from ..plugins import Registry
from ..errors import ConfigError
from ..plugins.types import Method, MethodStep
from .activation_checkpointing import enable_activation_checkpointing
from .components import RecipeComponents, build_method, check_data_mode, method_call
from .input_size import check_input_size
from .groups import INFERENCE_GROUP, GroupTrainable, as_groups_method, build_groups, check_optim_groups
from .optim import build_optimizer
from .rng import seed_everything, stream_seed
from .speed import SpeedPlan, apply_speed, plan_speed
from ..safe_text import shown


@dataclass
class Wired:
    method: Method
    """The method, as one that declares its groups (a first-form method through ``TwoGroups``)."""
    groups: dict[str, GroupTrainable]
    """Every network group by name, in the method's order, each wrapped by the strategy with its own
    optimizer (``.module`` is the bare group)."""
    step: MethodStep
    speed: SpeedPlan
    """The speed switches in force (compile, channels_last, cudnn.benchmark), resolved for the device."""
    augment: object = None
    """The discriminator augmentation in force (``augment``), on the device; None when off."""

    @property
    def gens(self) -> GroupTrainable:
        """The ``generators`` group (what inference loads)."""
        return self.groups[INFERENCE_GROUP]
    buffers: list = field(default_factory=list)
    """Every image buffer the method built (``make.buffer()``), in build order: what a resume on another
    world size redistributes (cgx.train.resize)."""


def wire_step(cfg: Config, registry: Registry, strategy,
              initialise: Callable[[dict[str, nn.Module]], None] | None = None, starts_run: bool = True) -> Wired:
    """Build everything a training step needs from ``cfg``. ``initialise(groups)`` may load weights into
    the bare groups before they are placed and wrapped (``train.init_from``). ``starts_run``: False when the
    run resumes (a checkpoint's weights replace the initial ones: methods skip their pretrained files)."""
    s, t = strategy, cfg.train
    method = as_groups_method(build_method(cfg, registry))
    make = RecipeComponents(cfg, registry, starts_run=starts_run)
    if check_data_mode(cfg, method) and s.is_main:
        print(f"cgx: method {shown(cfg.method.name)} does not learn from pairs: it trains on the paired data's A and B "
              f"images as two domains, ignoring which goes with which")
    augment = make.augment  # built before the networks (their seeded weights stay as without it); None: off
    # The same initial weights on every rank (DDP also broadcasts rank 0's).
    seed_everything(t.seed)
    bare = build_groups(cfg, method, make)
    check_optim_groups(cfg, list(bare))
    check_input_size(cfg, method.translators(bare[INFERENCE_GROUP]))  # data.crop_size against the networks
    enable_activation_checkpointing(make.generators, cfg)  # train.activation_checkpointing
    if initialise is not None:
        initialise(bare)
    if cfg.model.sync_batchnorm:
        bare = {name: sync_batchnorm(cfg, s, group) for name, group in bare.items()}
    speed = plan_speed(cfg, s.device, s.precision)  # train.compile, channels_last, cudnn_benchmark
    apply_speed(speed, bare.values(), s.device)
    if augment is not None and callable(getattr(augment, "to", None)):
        augment.to(s.device)
    offload = cfg.distributed.offload_optimizer
    groups = {name: GroupTrainable(name, s.wrap(group, build_optimizer(group.parameters(), cfg.optim.for_group(name),
                                                                       offload), name=name),
                                   cfg.optim.update_every(name))
              for name, group in bare.items()}

    # From here on every rank draws different randomness (buffers, augmentation).
    seed_everything(stream_seed(t.seed, 0, s.rank))
    step = method_call(cfg, method.build_step, groups, make, s.autocast)
    return Wired(method, groups, step, speed, augment, make.buffers)


def sync_batchnorm(cfg: Config, strategy, group: nn.Module) -> nn.Module:
    """``model.sync_batchnorm``: every BatchNorm of ``group`` as a SyncBatchNorm (statistics over all ranks'
    batches), under DDP with more than one rank; a single process keeps plain batch norm (the same thing).
    The one place batch norm is synchronised; without it each rank normalises with its own batch's
    statistics (and DDP broadcasts rank 0's running statistics with every forward)."""
    where = cfg.recipe or "<recipe>"
    if strategy.world_size <= 1:
        return group
    if strategy.name != "ddp":
        raise ConfigError(f"{where}: model.sync_batchnorm=true needs distributed.strategy=ddp, got "
                          f"{cfg.distributed.strategy}; set model.sync_batchnorm=false (per-rank batch statistics)")
    if strategy.device.type != "cuda":
        raise ConfigError(f"{where}: model.sync_batchnorm=true needs CUDA devices (torch's SyncBatchNorm), this run is on "
                          f"{strategy.device.type}; set model.sync_batchnorm=false (per-rank batch statistics)")
    return nn.SyncBatchNorm.convert_sync_batchnorm(group)
