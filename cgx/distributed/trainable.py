"""One network pair and its optimizer, as the trainer sees it: forward, backward, step, state.

Named the way PyTorch names a wrapped model: ``trainable(x)`` runs the wrapper (DDP or a DeepSpeed
engine, whose backward synchronises gradients across ranks), ``trainable.module`` is the bare
network inside it, as ``DistributedDataParallel.module`` is."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn


class Trainable(Protocol):
    module: nn.Module
    """The bare network pair: call it for forward passes that must not synchronise (a frozen
    discriminator in the generator phase, a gradient penalty's extra pass)."""
    optimizer: torch.optim.Optimizer

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A forward pass that trains, through the wrapper (gradients synchronised across ranks)."""
    def backward(self, loss: torch.Tensor) -> None: ...
    def step(self) -> None:
        """Optimizer step, then zero the gradients."""
    def state_dict(self) -> dict:
        """What goes into train.pt; always holds the plain weights under "module"."""
    def load_state_dict(self, state: dict) -> None:
        """From train.pt's entry."""
    def save_sharded(self, folder: Path) -> None:
        """Collective: state each rank writes itself into the checkpoint folder (DeepSpeed); nothing for DDP."""
    def load_sharded(self, folder: Path) -> None:
        """Collective: read back what ``save_sharded`` wrote; nothing for DDP."""
    def release(self) -> None:
        """Drop the wrapper before the process group is destroyed."""
