"""One network pair and its optimizer, as the trainer sees it: forward, backward, step, state.

Named the way PyTorch names a wrapped model: ``trainable(x)`` runs the wrapper (DDP or a DeepSpeed
engine, whose backward synchronises gradients across ranks), ``trainable.module`` is the bare
network inside it, as ``DistributedDataParallel.module`` is."""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..plugins.types import Trainable as MethodTrainable


class Trainable(MethodTrainable, Protocol):
    """What a method's step sees (``cgx.plugins.types.Trainable``: ``module``, ``optimizer``, calling
    it, ``backward``, ``step``), and what the engine needs besides: state and tear-down."""

    def forward_bare(self, *args, **kwargs):
        """A forward pass of the bare network outside the wrapper, inputs as the wrapper takes them."""
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
