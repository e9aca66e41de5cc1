"""Optional packages, installed with cgx's extras (``pip install 'cgx[wandb]'``).

    require("wandb", extra="wandb", what="logger wandb")   # in a factory: refuse early
    import wandb                                           # later, where it is used

A missing one is a one-line error naming the extra to install, raised where the feature is asked for
(a logger's factory, before training starts), never a traceback from deep inside a run. The check
finds the package without importing it (importing some starts processes or takes seconds).
"""
from __future__ import annotations

import importlib.util

from .errors import SetupError


def install_hint(extra: str) -> str:
    return f"pip install 'cgx[{extra}]'"


def require(module: str, extra: str, what: str) -> None:
    """SetupError unless ``module`` is installed: ``what`` needs it, and the pip command that installs it."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        raise SetupError(f"{what} needs the {module} package, which is not installed: {install_hint(extra)}")
