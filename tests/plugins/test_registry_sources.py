"""One module reached two ways (a recipe's ``plugins:`` path or import name, and an installed entry
point) registers once, in either order; two different modules claiming one name is an error naming
both sources and what to remove. In-process: the "installed" distribution is a ``.dist-info`` folder
on a path prepended to ``sys.path`` for this test alone (as pip lays one out)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cgx.plugins import LOAD_ENV, PluginError, Registry

PLUGIN = '''
from cgx.plugins import hookimpl


def build_twice(scale: float = 1.0):
    return lambda a, b: scale * (a - b).abs().mean()


@hookimpl
def cgx_register_reconstruction_losses(register):
    register("{name}", build_twice)
'''


@pytest.fixture
def site(tmp_path, monkeypatch):
    """A folder on sys.path with installed-looking distributions; forgets their modules after."""
    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    before = set(sys.modules)
    yield root
    for name in set(sys.modules) - before:
        if name.startswith(("cgx_twice", "cgx_recipe_plugin_", "cgx_other")):
            del sys.modules[name]


def install(site: Path, dist: str, module: str, name: str) -> Path:
    path = site / f"{module}.py"
    path.write_text(PLUGIN.format(name=name))
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[cgx]\n{name} = {module}\n")
    return path


@pytest.mark.parametrize("order", ["recipe path first", "entry point first", "import name"])
def test_same_module_from_a_recipe_and_an_entry_point_registers_once(site, monkeypatch, order):
    monkeypatch.setenv(LOAD_ENV, "cgx-twice")
    path = install(site, "cgx-twice", "cgx_twice", "twice_loss")
    registry = Registry()
    if order == "entry point first":
        assert registry.available("reconstruction_loss") == ["twice_loss"]
    spec = "cgx_twice" if order == "import name" else str(path)
    registry.load_module(spec)
    assert registry.available("reconstruction_loss") == ["twice_loss"]  # once, no duplicate error
    loss = registry.create("reconstruction_loss", "twice_loss", scale=2.0)
    import torch

    assert loss(torch.ones(2), torch.zeros(2)).item() == 2.0


def test_same_file_by_a_relative_path_registers_once(site, monkeypatch):
    monkeypatch.setenv(LOAD_ENV, "cgx-twice")
    install(site, "cgx-twice", "cgx_twice", "twice_loss")
    registry = Registry()
    registry.load_module("site/cgx_twice.py", base_dir=site.parent)
    assert registry.available("reconstruction_loss") == ["twice_loss"]


def test_two_different_modules_with_one_name_say_both_sources_and_what_to_remove(site, monkeypatch, tmp_path):
    monkeypatch.setenv(LOAD_ENV, "cgx-twice")
    install(site, "cgx-twice", "cgx_twice", "clash_loss")
    other = tmp_path / "recipes" / "cgx_other.py"
    other.parent.mkdir()
    other.write_text(PLUGIN.format(name="clash_loss"))
    registry = Registry()
    with pytest.raises(PluginError) as e:
        registry.load_module("cgx_other.py", base_dir=other.parent)
        registry.entries()
    msg = str(e.value)
    assert "\n" not in msg
    assert "duplicate reconstruction_loss name 'clash_loss'" in msg
    assert "cgx-twice 0.1.0 (entry point clash_loss = cgx_twice)" in msg and str(other.resolve()) in msg
    assert "two different modules" in msg
    assert "pip uninstall cgx-twice" in msg and f"{LOAD_ENV}=" in msg  # the installed one: how to remove or skip it
    assert "remove cgx_other.py from the recipe's plugins" in msg  # the recipe's: its entry as written


def test_a_clash_with_a_builtin_says_to_rename_not_to_uninstall_cgx(site, monkeypatch, tmp_path):
    monkeypatch.setenv(LOAD_ENV, "cgx")
    mine = tmp_path / "mine.py"
    mine.write_text(PLUGIN.format(name="l1"))
    registry = Registry()
    with pytest.raises(PluginError) as e:
        registry.load_module(str(mine))
        registry.entries()  # (installed plugins load on first use)
    msg = str(e.value)
    assert "duplicate reconstruction_loss name 'l1'" in msg and "pip uninstall cgx " not in msg
    assert "rename" in msg and str(mine) in msg


def test_a_copy_of_the_installed_module_registers_once_another_version_does_not(site, monkeypatch, tmp_path):
    """pip copies a module into site-packages: the file a recipe names is that module if the bytes agree."""
    monkeypatch.setenv(LOAD_ENV, "cgx-twice")
    installed = install(site, "cgx-twice", "cgx_twice", "twice_loss")
    mine = tmp_path / "work" / "cgx_twice.py"
    mine.parent.mkdir()
    mine.write_bytes(installed.read_bytes())
    registry = Registry()
    registry.load_module(str(mine))
    assert registry.available("reconstruction_loss") == ["twice_loss"]

    mine.write_text(installed.read_text() + "\n# edited since it was installed\n")
    registry = Registry()
    registry.load_module(str(mine))
    with pytest.raises(PluginError, match="duplicate reconstruction_loss name 'twice_loss'.*pip uninstall cgx-twice"):
        registry.entries()
