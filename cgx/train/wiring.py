"""One wiring of the training step from a recipe: the networks (built, initialised, placed, compiled,
wrapped by the strategy with their optimizers), the image buffers, the objective and the step.
``Trainer`` trains with it and ``benchmarks/bench_step.py`` measures it, so the benchmark times
exactly what trains."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from ..config import Config
from ..plugins import Registry
from ..plugins.types import Buffer
from . import components
from .networks import DiscriminatorPair, GeneratorPair
from .optim import build_optimizer
from .rng import seed_everything
from .step import CycleGANStep, Objective


@dataclass
class Wired:
    gens: object
    """The generator pair and its optimizer, wrapped by the strategy (a Trainable: ``.module`` is the bare pair)."""
    discs: object
    """The discriminator pair and its optimizer, wrapped likewise."""
    pool_a: Buffer
    pool_b: Buffer
    step: CycleGANStep


def wire_step(cfg: Config, registry: Registry, strategy,
              initialise: Callable[[GeneratorPair, DiscriminatorPair], None] | None = None) -> Wired:
    """Build everything a training step needs from ``cfg``. ``initialise(gens, discs)`` may load
    weights into the bare networks before they are placed and wrapped (``train.init_from``)."""
    s, t = strategy, cfg.train
    # The same initial weights on every rank (DDP also broadcasts rank 0's).
    seed_everything(t.seed)
    gens, discs = components.build_networks(cfg, registry)
    if initialise is not None:
        initialise(gens, discs)
    memory_format = torch.channels_last if t.channels_last else torch.preserve_format
    gens.to(s.device, memory_format=memory_format)
    discs.to(s.device, memory_format=memory_format)
    if t.compile:
        for net in (gens.G, gens.F, discs.D_A, discs.D_B):
            net.compile()
    offload = cfg.distributed.offload_optimizer
    gens_t = s.wrap(gens, build_optimizer(gens.parameters(), cfg.optim, offload), name="generators")
    discs_t = s.wrap(discs, build_optimizer(discs.parameters(), cfg.optim, offload), name="discriminators")

    # From here on every rank draws different randomness (buffers, augmentation).
    seed_everything(t.seed + 1_000_003 * s.rank)
    pool_a = components.build_buffer(cfg, registry)
    pool_b = components.build_buffer(cfg, registry)
    objective = Objective(components.build_adversarial_loss(cfg, registry),
                          components.build_reconstruction_loss(cfg, registry),
                          cfg.loss.cycle_weight, cfg.loss.identity_weight)
    step = CycleGANStep(gens_t, discs_t, objective, pool_a, pool_b, s.autocast)
    return Wired(gens_t, discs_t, pool_a, pool_b, step)
