"""Discriminator augmentation (recipe key ``augment``), applied by the engine so no method changes for it.

Where it acts:

- **Every discriminator input**: ``install`` registers a forward pre-hook on each network built from
  ``model.discriminator`` (``RecipeComponents.discriminator``), which replaces the input by ``augment(input)``.
  Every call of that network goes through it: the discriminator phase and the generator phase, through the
  group's DDP/DeepSpeed wrapper or on the bare module, a gradient penalty's extra pass
  (``DiscriminatorBatch.discriminator``), a conditional or multi-scale discriminator (hooked once, at its
  outer module). A hook rather than a wrapping module keeps the network itself: the same parameters (DDP and
  DeepSpeed see nothing new), the same ``state_dict`` keys (checkpoints with and without augmentation load
  into each other), ``output_shapes`` and every other attribute; ``nn.Module.compile`` compiles the hook
  with the network (``_call_impl`` runs it).
- **The real scores** (adaptive augmentation, ADA): the adversarial loss is the one place told which scores
  are of real images, in every method (``discriminator_loss(real_scores, fake_scores, batch)``), so
  ``ObservedLoss`` wraps the ``loss.gan`` component a method builds and shows the real scores to the
  augmentation before the loss is computed. The discriminator's forward cannot tell reals from fakes (methods
  concatenate them), and the step's results hold only the losses.
- **After every step** the trainer calls ``update`` with the images the discriminators saw and a reduction
  over ranks from the distribution layer (``Strategy.all_reduce``): plugins never import torch.distributed.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..plugins.types import AdaptiveAugment, Augment, DiscriminatorBatch, Scores


def adaptive(augment: Augment | None) -> bool:
    """Whether ``augment`` is on and steered by the real scores (``AdaptiveAugment``)."""
    return augment is not None and isinstance(augment, AdaptiveAugment)


def install(discriminator: nn.Module, augment: Augment) -> nn.Module:
    """``discriminator`` with ``augment`` applied to its input at every call (a forward pre-hook); returned
    as it was given (the same module, parameters and state_dict keys)."""

    def augment_input(module: nn.Module, args: tuple) -> tuple:
        if not args:
            return args
        return (augment(args[0]), *args[1:])

    discriminator.register_forward_pre_hook(augment_input)
    return discriminator


def augmented(module: nn.Module) -> bool:
    """Whether ``install`` hooked ``module`` (for tests and contract checks)."""
    return any(getattr(h, "__name__", "") == "augment_input" for h in module._forward_pre_hooks.values())


class ObservedLoss:
    """An adversarial loss whose discriminator loss first shows the real scores to an adaptive augmentation
    (detached, with the loss's ``decision_boundary``, default 0); otherwise the loss itself."""

    def __init__(self, loss: Any, augment: AdaptiveAugment) -> None:
        self.loss, self.augment = loss, augment
        self.boundary = float(getattr(loss, "decision_boundary", 0.0))

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        return self.loss.generator_loss(fake_scores)

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch | None = None) -> torch.Tensor:
        self.augment.observe(real_scores, self.boundary)
        return self.loss.discriminator_loss(real_scores, fake_scores, batch)

    def __getattr__(self, name: str) -> Any:  # the loss's own attributes (a gradient penalty's weight, ...)
        return getattr(self.loss, name)

    def __repr__(self) -> str:
        return f"ObservedLoss({self.loss!r})"


class AugmentUpdates:
    """The trainer's side of an adaptive augmentation: ``update`` after each step, scalars on log steps,
    its state as a checkpoint part (shared: the same on every rank)."""

    def __init__(self, augment: AdaptiveAugment, strategy, images_per_step: int) -> None:
        self.augment, self.strategy, self.images_per_step = augment, strategy, images_per_step

    def reduce(self, t: torch.Tensor) -> torch.Tensor:
        return self.strategy.all_reduce(t, "sum")

    def step_done(self) -> None:
        self.augment.update(self.images_per_step, self.reduce)

    def scalars(self) -> dict[str, float]:
        return {f"augment/{k}": float(v) for k, v in self.augment.scalars().items()}

    def state_dict(self) -> dict:
        return self.augment.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.augment.load_state_dict(state)
