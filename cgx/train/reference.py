"""The paper's algorithm written plainly: one CycleGAN iteration in eager PyTorch, for tests and
benchmarks to hold cgx's trainer against.

Nothing here comes from cgx's step, losses, buffers or strategies: only four given networks, two
Adam optimizers and the formulas of Zhu et al. 2017 with the authors' choices (least-squares GAN
loss, cycle L1 x 10, identity L1 x 5, discriminator loss halved, a 50-image history per domain).
``tests/train/test_reference.py`` checks that cgx's trainer step equals it; ``benchmarks/bench_step.py``
times it as its baseline."""
from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn


class HistoryPool:
    """Shrivastava et al.'s image history as the authors' ``ImagePool``: store while not full; then
    each image is, with probability 1/2, swapped for a stored one chosen at random."""

    def __init__(self, size: int, generator: torch.Generator) -> None:
        self.size, self.generator, self.images = size, generator, []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                i = int(torch.randint(0, self.size, (), generator=self.generator).item())
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)


class ReferenceCycleGAN:
    def __init__(self, G: nn.Module, F: nn.Module, D_A: nn.Module, D_B: nn.Module, *, lr: float = 2e-4,
                 betas=(0.5, 0.999), cycle_weight: float = 10.0, identity_weight: float = 5.0,
                 pool_size: int = 50, pool_generators=(None, None)) -> None:
        self.G, self.F, self.D_A, self.D_B = G, F, D_A, D_B
        self.opt_g = torch.optim.Adam([*G.parameters(), *F.parameters()], lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam([*D_A.parameters(), *D_B.parameters()], lr=lr, betas=betas)
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight
        gen_a, gen_b = (g if g is not None else torch.Generator().manual_seed(i) for i, g in enumerate(pool_generators))
        self.pool_a, self.pool_b = HistoryPool(pool_size, gen_a), HistoryPool(pool_size, gen_b)

    @staticmethod
    def lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
        return nnf.mse_loss(scores, torch.full_like(scores, target))

    def iteration(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        G, F, D_A, D_B = self.G, self.F, self.D_A, self.D_B
        # Generators: D_A and D_B frozen.
        for p in [*D_A.parameters(), *D_B.parameters()]:
            p.requires_grad_(False)
        fake_b, fake_a = G(a), F(b)
        rec_a, rec_b = F(fake_b), G(fake_a)
        idt_b, idt_a = G(b), F(a)
        losses = {
            "G/gan_AtoB": self.lsgan(D_B(fake_b), 1.0),
            "G/gan_BtoA": self.lsgan(D_A(fake_a), 1.0),
            "G/cycle_A": self.cycle_weight * nnf.l1_loss(rec_a, a),
            "G/cycle_B": self.cycle_weight * nnf.l1_loss(rec_b, b),
            "G/identity_A": self.identity_weight * nnf.l1_loss(idt_a, a),
            "G/identity_B": self.identity_weight * nnf.l1_loss(idt_b, b),
        }
        self.opt_g.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.opt_g.step()
        for p in [*D_A.parameters(), *D_B.parameters()]:
            p.requires_grad_(True)
        # Discriminators: real images against fakes from the history.
        pooled_a, pooled_b = self.pool_a.query(fake_a), self.pool_b.query(fake_b)
        losses["D/A"] = 0.5 * (self.lsgan(D_A(a), 1.0) + self.lsgan(D_A(pooled_a), 0.0))
        losses["D/B"] = 0.5 * (self.lsgan(D_B(b), 1.0) + self.lsgan(D_B(pooled_b), 0.0))
        self.opt_d.zero_grad(set_to_none=True)
        (losses["D/A"] + losses["D/B"]).backward()
        self.opt_d.step()
        return {k: v.detach() for k, v in losses.items()}
