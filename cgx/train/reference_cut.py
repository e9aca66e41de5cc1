"""CUT / FastCUT written plainly: one iteration of the authors' ``CUTModel.optimize_parameters``
(taesungp/contrastive-unpaired-translation, ``models/cut_model.py``, ``models/patchnce.py``,
``PatchSampleF`` in ``models/networks.py``) in eager PyTorch, for tests and benchmarks to hold cgx's
``cut`` / ``fastcut`` step against.

Nothing here comes from cgx's method, losses or strategies: a ResNet generator read as the authors'
``nn.Sequential`` (``G.model``: the features of layer i are the output of its module i), a list of
projection MLPs, a discriminator, two Adam optimizers and the formulas. Random draws come from torch's
global generator in the authors' order: the flip (FastCUT), then per NCE term the patches of each layer."""
from __future__ import annotations

import torch
import torch.nn.functional as nnf
from torch import nn


class ReferenceCUT:
    def __init__(self, G: nn.Module, heads: list[nn.Module], D: nn.Module, *, lr: float = 2e-4, betas=(0.5, 0.999),
                 gan_weight: float = 1.0, nce_weight: float = 1.0, nce_idt: bool = True,
                 nce_layers=(0, 4, 8, 12, 16), num_patches: int = 256, temperature: float = 0.07,
                 flip_equivariance: bool = False) -> None:
        self.G, self.heads, self.D = G, heads, D
        self.opt_g = torch.optim.Adam([*G.parameters(), *(p for h in heads for p in h.parameters())], lr=lr, betas=betas)
        self.opt_d = torch.optim.Adam(D.parameters(), lr=lr, betas=betas)
        self.gan_weight, self.nce_weight, self.nce_idt = gan_weight, nce_weight, nce_idt
        self.layers, self.num_patches, self.T, self.flip = list(nce_layers), num_patches, temperature, flip_equivariance

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, layer in enumerate(self.G.model):
            x = layer(x)
            if i in self.layers:
                out.append(x)
            if i == self.layers[-1]:
                return out
        return out

    def project(self, feats, ids=None):
        out, drawn = [], []
        for i, f in enumerate(feats):
            flat = f.permute(0, 2, 3, 1).flatten(1, 2)
            idx = ids[i] if ids is not None else torch.randperm(flat.shape[1], device=f.device)[:min(self.num_patches, flat.shape[1])]
            x = self.heads[i](flat[:, idx, :].flatten(0, 1))
            out.append(x / (x.pow(2).sum(1, keepdim=True).pow(0.5) + 1e-7))
            drawn.append(idx)
        return out, drawn

    def nce_layer(self, q: torch.Tensor, k: torch.Tensor, batch: int) -> torch.Tensor:
        k = k.detach()
        n, dim = q.shape
        l_pos = torch.bmm(q.view(n, 1, -1), k.view(n, -1, 1)).view(n, 1)
        qb, kb = q.view(batch, -1, dim), k.view(batch, -1, dim)
        p = qb.shape[1]
        l_neg = torch.bmm(qb, kb.transpose(2, 1))
        l_neg.masked_fill_(torch.eye(p, dtype=torch.bool)[None], -10.0)
        out = torch.cat((l_pos, l_neg.view(-1, p)), dim=1) / self.T
        return nnf.cross_entropy(out, torch.zeros(n, dtype=torch.long), reduction="none")

    def nce(self, src: torch.Tensor, tgt: torch.Tensor, flipped: bool) -> torch.Tensor:
        feat_q = self.features(tgt)
        if flipped:
            feat_q = [f.flip(3) for f in feat_q]
        feat_k = self.features(src)
        k, ids = self.project(feat_k)
        q, _ = self.project(feat_q, ids)
        total = 0.0
        for fq, fk in zip(q, k):
            total = total + (self.nce_layer(fq, fk, src.shape[0]) * self.nce_weight).mean()
        return total / len(self.layers)

    @staticmethod
    def lsgan(scores: torch.Tensor, target: float) -> torch.Tensor:
        return nnf.mse_loss(scores, torch.full_like(scores, target))

    def iteration(self, a: torch.Tensor, b: torch.Tensor) -> dict[str, torch.Tensor]:
        G, D = self.G, self.D
        # forward
        real = torch.cat((a, b)) if self.nce_idt else a
        flipped = self.flip and bool(torch.rand(()) < 0.5)
        if flipped:
            real = real.flip(3)
        fake = G(real)
        fake_b = fake[:a.shape[0]]
        idt_b = fake[a.shape[0]:] if self.nce_idt else None
        # update D
        for p in D.parameters():
            p.requires_grad_(True)
        self.opt_d.zero_grad(set_to_none=True)
        loss_d = 0.5 * (self.lsgan(D(fake_b.detach()), 0.0) + self.lsgan(D(b), 1.0))
        loss_d.backward()
        self.opt_d.step()
        # update G and the heads
        for p in D.parameters():
            p.requires_grad_(False)
        self.opt_g.zero_grad(set_to_none=True)
        losses = {"G/gan": self.gan_weight * self.lsgan(D(fake_b), 1.0)}
        nce = self.nce(a, fake_b, flipped)
        if self.nce_idt:
            losses["G/nce"], losses["G/nce_idt"] = 0.5 * nce, 0.5 * self.nce(b, idt_b, flipped)
        else:
            losses["G/nce"] = nce
        sum(losses.values()).backward()
        self.opt_g.step()
        for p in D.parameters():
            p.requires_grad_(True)
        losses["D/B"] = loss_d
        return {k: v.detach() for k, v in losses.items()}
