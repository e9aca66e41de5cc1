"""The two network pairs of CycleGAN, each one module so that each is wrapped (DDP, DeepSpeed) once.

G maps A -> B and F maps B -> A. D_A judges images of domain A, D_B of domain B.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn



@dataclass
class Translations:
    fake_b: torch.Tensor  # G(a)
    rec_a: torch.Tensor   # F(G(a))
    fake_a: torch.Tensor  # F(b)
    rec_b: torch.Tensor   # G(F(b))
    idt_b: torch.Tensor | None = None  # G(b), for the identity loss
    idt_a: torch.Tensor | None = None  # F(a)


class GeneratorPair(nn.Module):
    """G and F, called the fewest times the algorithm allows.

    With the identity loss, G sees a (for G(a)) and b (for the identity G(b)), and F sees b and a.
    When both generators declare ``per_sample = True`` (a sample's output does not depend on the
    others in its batch: instance norm or none, not batch norm), G runs once on [a; b] and F once on
    [b; a]: the same results in four generator calls instead of six, each on a larger batch."""

    def __init__(self, G: nn.Module, F: nn.Module, batch_calls: bool = True) -> None:
        super().__init__()
        self.G, self.F = G, F
        self.batch_calls = batch_calls and all(getattr(net, "per_sample", False) is True for net in (G, F))

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, identity: bool = True) -> Translations:
        if identity and self.batch_calls:
            na, nb = real_a.shape[0], real_b.shape[0]
            fake_b, idt_b = self.G(torch.cat([real_a, real_b])).split([na, nb])
            fake_a, idt_a = self.F(torch.cat([real_b, real_a])).split([nb, na])
            return Translations(fake_b=fake_b, rec_a=self.F(fake_b), fake_a=fake_a, rec_b=self.G(fake_a),
                                idt_b=idt_b, idt_a=idt_a)
        fake_b = self.G(real_a)
        fake_a = self.F(real_b)
        out = Translations(fake_b=fake_b, rec_a=self.F(fake_b), fake_a=fake_a, rec_b=self.G(fake_a))
        if identity:
            out.idt_b, out.idt_a = self.G(real_b), self.F(real_a)
        return out


class DiscriminatorPair(nn.Module):
    def __init__(self, D_A: nn.Module, D_B: nn.Module) -> None:
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor):
        return self.D_A(images_a), self.D_B(images_b)


def set_requires_grad(params, flag: bool) -> list[nn.Parameter]:
    """Set ``requires_grad`` on a module's parameters (or on a list of them) and return those whose
    flag changed, so that ``set_requires_grad(changed, not flag)`` restores exactly the previous state:
    parameters a plugin froze itself (a frozen pretrained backbone) stay frozen."""
    if isinstance(params, nn.Module):
        params = params.parameters()
    changed = [p for p in params if p.requires_grad != flag]
    for p in changed:
        p.requires_grad_(flag)
    return changed
