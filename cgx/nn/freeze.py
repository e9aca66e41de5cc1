"""Freezing parameters for a phase and restoring exactly what was changed."""
from __future__ import annotations

from torch import nn


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
