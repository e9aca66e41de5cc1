"""Every module of cgx (and the built-in plugins) imports when it is the first one imported.

A cycle between two modules only breaks when the one in the middle of the cycle is imported first
(``cgx recipes`` importing ``cgx.config_checks`` before ``cgx.config``); the suite's usual order hides
it. Each module here is imported into a process with no cgx module loaded."""
from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = r"""
import importlib, sys, traceback
import torch  # loaded once: only cgx's own modules are dropped between imports
failed = []
for name in sys.argv[1:]:
    for loaded in [m for m in sys.modules if m == "cgx" or m.startswith(("cgx.", "cgx_plugins"))]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed.append(name + ": " + traceback.format_exc().strip().splitlines()[-1])
print("\n".join(failed))
sys.exit(1 if failed else 0)
"""


def _modules() -> list[str]:
    names = []
    for package, folder in (("cgx", ROOT / "cgx"), ("cgx_plugins", ROOT / "plugins")):
        names.append(package)
        for info in pkgutil.walk_packages([str(folder)], prefix=package + "."):
            if not info.name.endswith("__main__"):
                names.append(info.name)
    return names


@pytest.mark.multiprocess
def test_each_module_imports_first():
    names = _modules()
    assert "cgx.config_checks" in names and "cgx.config" in names and len(names) > 50
    done = subprocess.run([sys.executable, "-c", SCRIPT, *names], capture_output=True, text=True, cwd=ROOT,
                          timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
