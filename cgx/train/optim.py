"""The optimizers of a run: one for the generator pair, one for the discriminator pair."""
from __future__ import annotations

import torch

from ..config import OptimConfig


def build_optimizer(params, cfg: OptimConfig, offload: bool = False) -> torch.optim.Optimizer:
    """The recipe's ``optim`` section as an optimizer. ``offload`` (``distributed.offload_optimizer``):
    DeepSpeed's CPU Adam, which keeps the optimizer state in host memory."""
    if offload:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(params, lr=cfg.lr, betas=tuple(cfg.betas))
    if cfg.name == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas))
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum)
