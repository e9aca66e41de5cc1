"""pix2pix's iteration written plainly, as the authors' ``Pix2PixModel.optimize_parameters``: G(x) once;
D updated on the detached fake pair and the real pair (two calls), loss (fake + real) x 0.5; then G updated
with D frozen on BCE(D(x, G(x)), real) + 100 x L1(G(x), y). Nothing comes from cgx's step, losses or
strategies; ``tests/train/test_pix2pix_reference.py`` holds cgx's step equal to it."""
from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn


class ReferencePix2Pix:
    def __init__(self, G: nn.Module, D: nn.Module, *, lr: float = 2e-4, betas=(0.5, 0.999),
                 l1_weight: float = 100.0) -> None:
        self.G, self.D, self.l1_weight = G, D, l1_weight
        self.opt_g = torch.optim.Adam(G.parameters(), lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)

    @staticmethod
    def bce(scores: torch.Tensor, real: bool) -> torch.Tensor:
        return nnf.binary_cross_entropy_with_logits(scores, torch.full_like(scores, 1.0 if real else 0.0))

    def iteration(self, x: torch.Tensor, y: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D = self.G, self.D
        fake = G(x)
        # update D
        for p in D.parameters():
            p.requires_grad_(True)
        self.opt_d.zero_grad()
        loss_d_fake = self.bce(D(torch.cat((x, fake), 1).detach()), False)
        loss_d_real = self.bce(D(torch.cat((x, y), 1)), True)
        loss_d = (loss_d_fake + loss_d_real) * 0.5
        loss_d.backward()
        self.opt_d.step()
        # update G
        for p in D.parameters():
            p.requires_grad_(False)
        self.opt_g.zero_grad()
        loss_g_gan = self.bce(D(torch.cat((x, fake), 1)), True)
        loss_g_l1 = nnf.l1_loss(fake, y) * self.l1_weight
        (loss_g_gan + loss_g_l1).backward()
        self.opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        return {"D/pair": loss_d.detach(), "G/gan": loss_g_gan.detach(), "G/L1": loss_g_l1.detach()}
