"""One network pair and its optimizer, as the trainer sees it: forward, backward, step, state."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

import torch
from torch import nn


class Trainable(Protocol):
    module: nn.Module
    """Call this for a forward pass that trains (gradients are synchronised across ranks)."""
    raw: nn.Module
    """The unwrapped network pair: call it for forward passes that must not synchronise."""
    optimizer: torch.optim.Optimizer

    def backward(self, loss: torch.Tensor) -> None: ...
    def step(self) -> None:
        """Optimizer step, then zero the gradients."""
    def state_dict(self) -> dict:
        """What goes into train.pt; always holds the plain weights under "module"."""
    def load_state_dict(self, state: dict, folder: Path | None = None) -> None:
        """From train.pt's entry and the checkpoint folder (where sharded state lives)."""
    def save_sharded(self, folder: Path) -> None:
        """Collective: state each rank writes itself (DeepSpeed); nothing for DDP."""
    def release(self) -> None:
        """Drop the wrapper before the process group is destroyed."""
