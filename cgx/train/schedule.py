"""The paper's learning-rate schedule: constant, then linear decay to 0 over the last stretch."""
from __future__ import annotations

import torch


def linear_decay(total_steps: int, decay_steps: int):
    """lr factor at ``step``: 1 until ``total - decay``, then linearly down to 0 at ``total``.

    The authors decay once per epoch (constant for 100 epochs, then 100 epochs of decay); this is
    the same line sampled every step."""
    decay_steps = max(0, min(decay_steps, total_steps))
    start = total_steps - decay_steps

    def factor(step: int) -> float:
        if step < start or decay_steps == 0:
            return 1.0
        return max(0.0, (total_steps - step) / decay_steps)

    return factor


def lr_schedule(optimizer, optim, total_steps: int, steps_per_epoch: int):
    """One group's lr schedule: its settings' (``OptimConfig.for_group``) decay over ``total_steps``."""
    decay = optim.decay_steps if optim.decay_steps is not None else optim.decay_epochs * steps_per_epoch
    return torch.optim.lr_scheduler.LambdaLR(optimizer, linear_decay(total_steps, decay))
