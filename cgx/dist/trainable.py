"""One network pair and its optimizer, as the trainer sees it: forward, backward, step, state."""
from __future__ import annotations

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
    def step(self) -> None: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...
