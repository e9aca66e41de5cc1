"""What a method's step needs besides its networks: freeze a group for a phase, score real and fake in
one call, and compute losses in fp32 outside autocast. Public API (re-exported from ``cgx.plugins``);
the built-in methods use the same functions.

    from cgx.plugins import frozen, score_real_and_fake, fp32

    # generator phase: D frozen (only what this froze is unfrozen after), losses outside autocast
    with frozen(self.discs), self.autocast():
        fake = self.gens(a)
        score = self.discs.module(fake)
    g_loss = self.gan.generator_loss(score)              # the loss plugins compute in fp32 themselves
    l1 = nnf.l1_loss(fp32(fake), b)                      # your own terms: fp32(...) first
    ...
    # discriminator phase: real and (detached) fake in one call through the wrapper, scores split back
    with self.autocast():
        real_scores, fake_scores = score_real_and_fake(self.discs, b, fake.detach())
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Union

import torch
from torch import nn

from ..nn.freeze import set_requires_grad
from ..nn.scores import as_list, mean_over, split
from .types import Scores, Trainable

__all__ = ["as_list", "fp32", "frozen", "mean_over", "score_real_and_fake", "set_requires_grad", "split"]


@contextlib.contextmanager
def frozen(*groups: Union[nn.Module, Trainable]) -> Iterator[None]:
    """Inside the block, no parameter of ``groups`` (bare modules, or ``Trainable`` groups as the
    step gets them) requires a gradient: a generator phase's losses do not reach the discriminators.
    After it, exactly the parameters it froze are unfrozen: what a plugin froze itself (a pretrained
    backbone) stays frozen."""
    changed: list[nn.Parameter] = []
    try:
        for group in groups:
            changed += set_requires_grad(_bare(group), False)
        yield
    finally:
        set_requires_grad(changed, True)


def score_real_and_fake(discriminator: Callable[[torch.Tensor], Scores], real: torch.Tensor,
                        fake: torch.Tensor) -> tuple[Scores, Scores]:
    """``discriminator`` run once on ``real`` and ``fake`` concatenated along the batch (one forward:
    one gradient synchronisation through the wrapper, one set of batch statistics), its scores split
    back into (real_scores, fake_scores). Works for one score tensor or a list (multi-output)."""
    if real.shape[1:] != fake.shape[1:]:
        raise ValueError(f"score_real_and_fake: real images {tuple(real.shape)} and fakes {tuple(fake.shape)} "
                         f"differ beyond the batch")
    return split(discriminator(torch.cat([real, fake])), real.shape[0])


def fp32(x: Union[torch.Tensor, Scores]) -> Union[torch.Tensor, Scores]:
    """``x`` (a tensor, or a list of score tensors) in float32: what a loss term computed by the
    method itself starts from, outside autocast (under bf16/fp16 autocast the networks' outputs are
    low precision; a sum of many small terms in bf16 loses them)."""
    if isinstance(x, (list, tuple)):
        return [t.float() for t in x]
    return x.float()


def _bare(group: Union[nn.Module, Trainable]) -> nn.Module:
    """The bare module of a ``Trainable`` (its ``.module``) or the module itself."""
    if isinstance(group, nn.Module):
        return group
    module = getattr(group, "module", None)
    if isinstance(module, nn.Module):
        return module
    raise TypeError(f"frozen: expected an nn.Module or a Trainable group, got {type(group).__name__}")
