"""``cgx export RUN --format authors``: a run's four networks as the authors' files.

``latest_net_G_A.pth`` (G: A -> B), ``latest_net_G_B.pth`` (F: B -> A), ``latest_net_D_A.pth``
(cgx's D_B: it judges domain B) and ``latest_net_D_B.pth`` (cgx's D_A), plain state dicts in their
key layout, as their ``save_networks`` writes them, so that their ``test.py --model cycle_gan``
(and ``--continue_train``) load them unchanged with the matching ``--netG``/``--ngf``/``--norm`` options.
A pix2pix run gives ``latest_net_G.pth`` and ``latest_net_D.pth`` (the conditional D), for their
``--model pix2pix`` with the run's ``--direction``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from ..config import config_from_dict
from ..errors import CheckpointError
from ..train.checkpoint import SHARED_FILE, read_generators
from . import authors
from .files import check_free, write_atomic
from .sources import CGX_TO_AUTHORS, PIX2PIX_NAMES


def run_weights(path: str | Path, weights: str = "auto") -> tuple[Path, dict, dict[str, dict[str, torch.Tensor]]]:
    """(checkpoint folder, its recipe as a dict, {G, F, D_A, D_B: state dict}) of a run's newest
    checkpoint; the generators' raw or EMA weights by ``weights`` (``auto``: EMA where kept)."""
    weights = read_generators(path, weights)
    if weights.discriminators is None:
        raise CheckpointError(f"{weights.checkpoint / SHARED_FILE}: no discriminator weights in it (discriminators.module)")
    nets: dict[str, dict] = {}
    for pair in (weights.state, weights.discriminators):
        for key, value in pair.items():
            name, _, rest = key.partition(".")
            nets.setdefault(name, {})[rest] = value
    return weights.checkpoint, weights.config, nets


def export_authors(run: str | Path, out: str | Path | None = None, *, epoch: str = "latest",
                   force: bool = False, weights: str = "auto") -> list[Path]:
    """Write ``{epoch}_net_{G_A,G_B,D_A,D_B}.pth`` into ``out`` (default: RUN/export/authors)."""
    ckpt, raw, nets = run_weights(run, weights)
    cfg = config_from_dict(raw, where=str(ckpt / SHARED_FILE))
    out = Path(out) if out is not None else Path(run) / "export" / "authors"
    names = PIX2PIX_NAMES if cfg.method.name == "pix2pix" else CGX_TO_AUTHORS  # pix2pix: net_G, net_D
    unknown = sorted(set(nets) - set(names))
    if unknown:
        raise CheckpointError(f"{ckpt}: method {cfg.method.name} has networks {', '.join(sorted(nets))}; the authors' "
                              f"files hold CycleGAN's (G, F, D_A, D_B) or pix2pix's (G, D) only")
    converted = {name: authors.to_authors(cfg.model.generator if name in ("G", "F") else cfg.model.discriminator, state,
                                          f"{ckpt}: model.{'generator' if name in ('G', 'F') else 'discriminator'}")
                 for name, state in nets.items()}
    targets = {name: out / f"{epoch}_net_{names[name]}.pth" for name in converted}
    check_free(list(targets.values()), force)
    return [write_atomic(targets[name], lambda tmp, s=state: torch.save(s, tmp)) for name, state in converted.items()]
