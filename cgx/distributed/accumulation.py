"""Gradient accumulation in the wrappers: k calls of a method's whole step make one optimizer step.

The trainer tells the strategy which micro-batch (slot 0 .. k-1) of the optimizer step comes next
(``Strategy.micro_batch``); every trainable then scales its losses by 1/k, does not synchronise
gradients across ranks before the last slot (DDP's ``no_sync``; DeepSpeed's own accumulation
boundary), and steps its optimizer at the last slot only (``step()`` before it does nothing).

Why this is one step on the k-times-larger batch without touching a method: in a phase the other
groups are frozen (``set_requires_grad``) or see detached tensors, so each group's gradient is the
sum over micro-batches of its per-micro-batch gradient, as long as no phase *uses* a group whose
step came earlier in the same method step. CycleGAN (generator phase, then discriminators on
fakes computed before the generators' step) meets that. A method whose discriminator phase comes
first and whose generator phase then scores with the stepped discriminators (CUT, pix2pix) does
not: with k > 1 its generator phases see the discriminators as they were before the step. The
first accumulated step checks for that (``UseAfterStep``) and says so once.
"""
from __future__ import annotations

import sys

from torch import nn


class Accumulates:
    """What both trainables share: where in the optimizer step the next micro-batch is."""

    accumulation: int = 1
    slot: int = 0
    check: "UseAfterStep | None" = None

    def deferred(self, name: str) -> None:
        """``step()`` before the last micro-batch: nothing, but noted for the first step's check."""
        if self.check is not None:
            self.check.step_deferred(name)

    @property
    def boundary(self) -> bool:
        """Is the current micro-batch the last of its optimizer step (synchronise and step)?"""
        return self.slot == self.accumulation - 1

    def set_micro_batch(self, slot: int, accumulation: int) -> None:
        self.slot, self.accumulation = slot, accumulation


class UseAfterStep:
    """Notes a group's network running after that group's (deferred) step in the same micro-batch.

    Installed for the first micro-batch of an accumulated run only (forward pre-hooks on every
    submodule: a method may call a group's inner network, as pix2pix calls ``discs.module.D``)."""

    def __init__(self, trainables: list) -> None:
        self.stepped: set[str] = set()
        self.found: list[tuple[str, str]] = []  # (group used, group stepping before)
        self.order: list[str] = []
        self.handles = []
        for t in trainables:
            name = getattr(t, "name", "") or type(t.module).__name__
            for m in t.module.modules():
                self.handles.append(m.register_forward_pre_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(module: nn.Module, args) -> None:
            if name in self.stepped and not any(u == name for u, _ in self.found):
                self.found.append((name, self.order[-1]))
        return hook

    def step_deferred(self, name: str) -> None:
        self.stepped.add(name)
        self.order.append(name)

    def finish(self, is_main: bool, accumulation: int) -> None:
        for h in self.handles:
            h.remove()
        self.handles = []
        if self.found and is_main:
            used = ", ".join(sorted({u for u, _ in self.found}))
            print(f"cgx: warning: the method's step uses the group(s) {used} after their optimizer step within "
                  f"the same step; with gradient accumulation ({accumulation} micro-batches) those uses see the "
                  f"weights from before the step for {accumulation - 1} of {accumulation} micro-batches, so the run "
                  f"differs from one step on the global batch (docs/training.md#global-batch-and-gradient-accumulation)",
                  file=sys.stderr)
