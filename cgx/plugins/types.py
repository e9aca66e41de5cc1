"""The plugin contract: what each kind of component is, and the values the trainer hands them.

A plugin author reads this module and nothing of the trainer. Every object a registered factory
returns is checked against its kind's Protocol when it is built (``Registry.create``); one that does
not fit stops the run before step 1 with the plugin's name, its source and what is missing.

    from cgx.plugins.types import AdversarialLoss, DiscriminatorBatch, Scores

Kinds and the recipe keys that select them:

==================== =============================== ========================================
kind                 Protocol                         recipe key
==================== =============================== ========================================
generator            :class:`Generator`               ``model.generator``
discriminator        :class:`Discriminator`           ``model.discriminator``
adversarial_loss     :class:`AdversarialLoss`         ``loss.gan``
reconstruction_loss  :class:`ReconstructionLoss`      ``loss.cycle`` (cycle and identity terms)
buffer               :class:`Buffer`                  ``buffer``
==================== =============================== ========================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import (Any, Callable, ContextManager, Generic, Iterator, Protocol, Sequence, Union,
                    runtime_checkable)

import torch
from torch import nn

Scores = Union[torch.Tensor, Sequence[torch.Tensor]]
"""A discriminator's output: one score tensor, or a list of them (multi-output discriminators: one
per scale or head). Batch first; raw logits, no sigmoid; possibly bf16/fp16 under autocast."""


@dataclass
class DiscriminatorBatch:
    """What an adversarial loss may need beyond the scores (a gradient penalty needs all of it)."""

    discriminator: nn.Module
    """This domain's discriminator, bare (not the DDP/DeepSpeed wrapper): an extra forward pass
    through it does not synchronise ranks."""
    real: torch.Tensor
    """The real images that were scored."""
    fake: torch.Tensor
    """The fakes that were scored (drawn from the history buffer)."""
    autocast: Callable[[], ContextManager]
    """The run's autocast context, for extra forward passes: ``with batch.autocast(): ...``."""


@runtime_checkable
class Generator(Protocol):
    """An ``nn.Module`` mapping a (N, C, H, W) batch in [-1, 1] to one of the same shape in [-1, 1].

    Optional attributes: ``size_multiple`` (int: inputs must be a multiple of it) and ``min_size``
    (int), to which ``cgx translate`` pads images; ``per_sample`` (bool): True when a sample's output
    does not depend on the other samples of its batch (instance norm or none; not batch norm), which
    lets the trainer run G on [a; b] for G(a) and the identity G(b) in one call.

    Optional methods (the built-in ``resnet`` and ``unet`` have both):

    - ``enable_activation_checkpointing() -> None``: from then on, when gradients are enabled,
      recompute activations in backward (``torch.utils.checkpoint``, ``use_reentrant=False``)
      instead of keeping them, with the same gradients. Called once after the network is built when
      ``train.activation_checkpointing`` is true; a generator without it is refused with its name.
    - ``tiling_stages() -> list[nn.Module]``: modules whose application in sequence is ``forward``
      (in eval mode; the same parameters), each made only of layers ``cgx.tiling`` knows
      (convolutions, transposed convolutions, pads, instance norm, eval-mode batch norm, upsampling,
      dropout and pointwise activations) combined by local operations (residual add, channel
      concatenation): nothing that looks at the whole image (global pooling, attention). Declaring
      it makes the generator usable by ``cgx translate --tile``, which computes instance norm
      statistics over the whole image; a generator without it, or with a layer of another type, is
      refused with its name. The tiled result equals the untiled one; a stage boundary is where the
      engine keeps a whole-image feature map, so a stage per low-resolution block keeps recomputation low."""

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict: ...
    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> Any: ...


@runtime_checkable
class Discriminator(Protocol):
    """An ``nn.Module`` mapping images to :data:`Scores`. The trainer calls it on real and fake
    images concatenated and splits the scores by batch, so samples must not mix (no batch norm for a
    gradient penalty). Parameters it freezes itself stay frozen."""

    def forward(self, x: torch.Tensor) -> Scores: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict: ...
    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> Any: ...

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(channels, h, w) of each score tensor for a height x width input, one per output."""


@runtime_checkable
class AdversarialLoss(Protocol):
    """The GAN objective (``loss.gan``). Compute in fp32: the trainer calls it outside autocast."""

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        """Scalar: the generator wants its fakes scored as real."""

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch) -> torch.Tensor:
        """Scalar: the discriminator's loss on real and (history-buffer) fake scores."""


@runtime_checkable
class ReconstructionLoss(Protocol):
    """The cycle and identity distance (``loss.cycle``): ``loss(output, target) -> scalar``."""

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Buffer(Protocol):
    """The history of generated images the discriminator sees (``buffer``). Its state is saved per
    rank with every checkpoint and loaded with ``weights_only=True``: tensors, numbers, strings."""

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images for the discriminator instead of the current fakes ``images`` (same shape)."""

    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


INTERFACES: dict[str, type] = {
    "generator": Generator,
    "discriminator": Discriminator,
    "adversarial_loss": AdversarialLoss,
    "reconstruction_loss": ReconstructionLoss,
    "buffer": Buffer,
}
"""Plugin kind -> the Protocol its components must satisfy."""

MODULE_KINDS = ("generator", "discriminator")
"""Kinds whose components must also be ``torch.nn.Module`` (they are wrapped by DDP/DeepSpeed)."""


def members(protocol: type) -> list[str]:
    """The methods and attributes a Protocol requires, in definition order."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Generic) or not getattr(klass, "_is_protocol", False):
            continue
        for name in [*getattr(klass, "__annotations__", {}), *vars(klass)]:
            if (not name.startswith("_") or name == "__call__") and name not in names:
                names.append(name)
    return names


def missing(obj: Any, kind: str) -> list[str]:
    """What ``obj`` lacks to be a component of ``kind`` (empty: it fits)."""
    lacks = []
    names = members(INTERFACES[kind])
    if kind in MODULE_KINDS and not isinstance(obj, nn.Module):
        lacks.append("to be a torch.nn.Module")
        names = [n for n in names if not hasattr(nn.Module, n)]
    for name in names:
        value = getattr(obj, name, None)
        if value is None or (name != "__call__" and name in _METHODS[kind] and not callable(value)):
            lacks.append(f"{name}()" if name in _METHODS[kind] else name)
    return lacks


_METHODS = {kind: {n for n in members(p) if callable(getattr(p, n, None))} for kind, p in INTERFACES.items()}

__all__ = ["AdversarialLoss", "Buffer", "Discriminator", "DiscriminatorBatch", "Generator", "INTERFACES",
           "MODULE_KINDS", "ReconstructionLoss", "Scores", "members", "missing"]
