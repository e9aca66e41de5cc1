"""PatchNCE (Park, Efros, Zhang, Zhu, ECCV 2020): the patchwise contrastive loss of CUT, its patch
sampling and its projection heads, as in the authors' code (taesungp/contrastive-unpaired-translation,
``models/patchnce.py`` and ``PatchSampleF`` in ``models/networks.py``).

For one encoder layer: the same ``num_patches`` locations (``sample_patches``) are taken from the
features of the input x (keys k) and of its translation G(x) (queries q); each is projected by the
layer's head (Linear, ReLU, Linear; ``--netF mlp_sample``, ``--netF_nc 256``) and L2-normalised. For
patch i of image b, with temperature tau (``--nce_T 0.07``)::

    loss[b, i] = -log  exp(q_i.k_i / tau) / ( exp(q_i.k_i / tau) + sum_{j != i} exp(q_i.k_j / tau)
                                               + exp(-10 / tau) )

over the patches j of the same image only (``--nce_includes_all_negatives_from_minibatch False``).
The last term is the authors' stand-in for the diagonal of the negatives matrix (filled with -10
before dividing by tau: exp(-142.9), kept for exactness). Keys carry no gradient (their
``feat_k.detach()``). The loss is computed in fp32 whatever the run's autocast."""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as nnf
from torch import nn

DIAGONAL_LOGIT = -10.0
"""What the authors fill the negatives' diagonal (a patch against itself) with, before dividing by tau."""


def sample_patches(features: Sequence[torch.Tensor], num_patches: int) -> list[torch.Tensor]:
    """Per layer, ``min(num_patches, H*W)`` distinct locations, the same for every image of the batch:
    ``torch.randperm(H*W)[:n]`` on the features' device, from torch's global generator (which cgx saves
    and restores per rank, so a resumed run draws the same patches)."""
    out = []
    for f in features:
        hw = f.shape[2] * f.shape[3]
        out.append(torch.randperm(hw, device=f.device)[:min(num_patches, hw)])
    return out


def l2_normalize(x: torch.Tensor) -> torch.Tensor:
    """x / (||x||_2 + 1e-7) along dim 1, the authors' ``Normalize(2)``, with one difference: for a row
    that is exactly zero their ``pow(0.5)`` has an infinite gradient and makes the heads NaN
    (a patch whose features are all zero: small networks hit it in the first steps); ``vector_norm``'s
    gradient there is 0. Everywhere else the two are the same function."""
    return x / (torch.linalg.vector_norm(x, dim=1, keepdim=True) + 1e-7)


class ProjectionHeads(nn.Module):
    """One two-layer MLP per feature layer, ``Linear(C_i, units), ReLU, Linear(units, units)``, built
    up front from the layers' channel counts (the authors create them lazily on the first forward;
    DDP and DeepSpeed need every parameter when they wrap). Initialised as theirs with the default
    ``--init_type xavier --init_gain 0.02``: weights xavier-normal with gain 0.02, biases 0."""

    def __init__(self, channels: Sequence[int], units: int = 256, init_gain: float = 0.02) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, units), nn.ReLU(), nn.Linear(units, units)) for c in channels)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_normal_(m.weight, gain=init_gain)
                nn.init.zeros_(m.bias)

    def forward(self, features: Sequence[torch.Tensor], patch_ids: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """(N, C_i, H_i, W_i) features -> (N * P_i, units) projected, L2-normalised patch vectors,
        image-major (the P_i patches of image 0 first)."""
        out = []
        for mlp, f, ids in zip(self.mlps, features, patch_ids):
            x = f.permute(0, 2, 3, 1).flatten(1, 2)[:, ids, :].flatten(0, 1)
            out.append(l2_normalize(mlp(x)))
        return out


def patch_nce(q: torch.Tensor, k: torch.Tensor, batch: int, temperature: float = 0.07) -> torch.Tensor:
    """Per-patch PatchNCE loss, shape (batch * P,), for queries ``q`` and keys ``k`` of shape
    (batch * P, D) (``ProjectionHeads``' output); negatives from the same image only."""
    with torch.autocast(q.device.type, enabled=False):
        q, k = q.float(), k.detach().float()
        n, dim = q.shape
        positive = (q * k).sum(1, keepdim=True)  # (n, 1)
        qb, kb = q.view(batch, -1, dim), k.view(batch, -1, dim)
        p = qb.shape[1]
        negatives = torch.bmm(qb, kb.transpose(1, 2))  # (batch, P, P)
        eye = torch.eye(p, device=q.device, dtype=torch.bool)[None]
        negatives = negatives.masked_fill(eye, DIAGONAL_LOGIT).view(-1, p)
        logits = torch.cat([positive, negatives], 1) / temperature
        return nnf.cross_entropy(logits, torch.zeros(n, dtype=torch.long, device=q.device), reduction="none")
