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
    def __init__(self, G: nn.Module, F: nn.Module) -> None:
        super().__init__()
        self.G, self.F = G, F

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, identity: bool = True) -> Translations:
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
