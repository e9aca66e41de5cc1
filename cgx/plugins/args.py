"""Checks a plugin factory makes on its own arguments, with messages that name them.

    def build_mynet(ngf: int = 64, n_blocks: int = 9):
        at_least(1, ngf=ngf)
        at_least(0, n_blocks=n_blocks)

A factory raises ValueError for a value it cannot use; ``Registry.create`` turns whatever a
factory raises into a one-line PluginError naming the plugin, and the trainer adds the recipe key.
"""
from __future__ import annotations


def at_least(low: int | float, **values: int | float) -> None:
    """ValueError naming the first argument below ``low``."""
    for name, value in values.items():
        if not value >= low:  # (also refuses nan)
            raise ValueError(f"{name} must be >= {low}, got {value}")
