"""A run folder's ``config.yaml`` given back to ``cgx train`` (or ``cgx.run``) as its recipe.

That file is cgx's record of a run (it starts with ``cgx.outputs.CONFIG_MARK``), and a run folder
may come from someone else: like a checkpoint (``cgx.infer``), it runs no code of its own. The
plugin modules its ``plugins:`` names are not imported unless they are named again with
``--plugins`` (or a ``plugins=[...]`` override); and the run goes on in the folder the file is in,
whatever ``train.run_dir`` it records (a relative one would send it elsewhere, relative to the
working directory)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Sequence

from .config import Config
from .outputs import written_by_cgx


def _overridden(overrides: Sequence[str], key: str) -> bool:
    return any(item.partition("=")[0].strip() == key for item in overrides)


def given_plugins(plugins: Sequence[str]) -> list[str]:
    """``--plugins`` as given on the command line: a ``.py`` path relative to the working directory
    made absolute (a recipe's own are relative to the recipe's folder)."""
    out = []
    for spec in plugins:
        is_path = spec.endswith(".py") or os.sep in spec or "/" in spec
        out.append(str(Path(spec).resolve()) if is_path else spec)
    return out


def apply_command_line(cfg: Config, recipe: str | Path, plugins: Sequence[str] = (), overrides: Sequence[str] = (),
                       say: bool = True) -> Config:
    """``cfg`` loaded from ``recipe``, as this launch runs it: ``--plugins`` added; for a run's record
    (``RUN/config.yaml``) its own ``plugins:`` dropped (said once, ``say``) and ``train.run_dir`` the
    file's folder (unless an override sets them)."""
    extra = given_plugins(plugins)
    if not written_by_cgx(recipe):
        cfg.plugins = [*cfg.plugins, *(p for p in extra if p not in cfg.plugins)]
        return cfg
    folder = Path(recipe).resolve().parent
    if not _overridden(overrides, "plugins"):
        dropped = [p for p in cfg.plugins if p not in plugins and p not in extra]
        if dropped and say:
            print(f"cgx: {recipe} is a run's record written by cgx: the plugin modules it names "
                  f"({', '.join(dropped)}) are not imported, as a checkpoint's are not; name them again with "
                  f"--plugins to load them", file=sys.stderr)
        cfg.plugins = extra
    elif extra:
        cfg.plugins = [*cfg.plugins, *(p for p in extra if p not in cfg.plugins)]
    if not _overridden(overrides, "train.run_dir"):
        cfg.train.run_dir = str(folder)
    return cfg
