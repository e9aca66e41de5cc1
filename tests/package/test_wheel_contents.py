"""The wheel built from this checkout holds every package under cgx/ and plugins/ (as cgx_plugins),
every built-in recipe (as cgx/_recipes) and the console script and entry points; the examples under
plugins/examples (packages of their own) stay out. The wheel is built from a copy of the checkout, so
no build files land in it. .ci/wheel_check.sh installs such a wheel into a fresh venv and uses it."""
from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCES = ("cgx", "plugins", "recipes", "pyproject.toml", "setup.py", "README.md")


def packages_under(root: Path, name: str) -> set[str]:
    """Every folder below ``root`` holding Python files, as the dotted package it installs as."""
    found = set()
    for py in root.rglob("*.py"):
        rel = py.parent.relative_to(root)
        if "__pycache__" in rel.parts or (rel.parts and rel.parts[0] == "examples"):
            continue
        found.add(".".join((name, *rel.parts)))
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        item = REPO / name
        if item.is_dir():
            shutil.copytree(item, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(item, src / name)
    out = tmp_path_factory.mktemp("dist")
    # with this venv's setuptools, offline, in seconds; a venv without it builds in isolation (from the index)
    offline = ["--no-build-isolation", "--no-index"] if importlib.util.find_spec("setuptools") else []
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", *offline, "--disable-pip-version-check",
                           "-q", "-w", str(out), str(src)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    (built,) = out.glob("cgx-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_files(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


@pytest.mark.multiprocess
def test_the_wheel_holds_every_package_and_recipe(wheel_files):
    expected = packages_under(REPO / "cgx", "cgx") | packages_under(REPO / "plugins", "cgx_plugins")
    assert {"cgx.datasets", "cgx_plugins.methods.cut"} <= expected  # the walk itself sees nested packages
    in_wheel = {str(Path(n).parent).replace("/", ".") for n in wheel_files if n.endswith(".py")}
    assert expected - in_wheel == set(), "packages missing from the wheel"
    modules = {str(p.relative_to(REPO)) for p in (REPO / "cgx").rglob("*.py") if "__pycache__" not in p.parts}
    assert modules - wheel_files == set(), "modules missing from the wheel"
    recipes = {f"cgx/_recipes/{p.name}" for p in (REPO / "recipes").glob("*.yaml")}
    assert len(recipes) >= 10 and recipes <= wheel_files
    assert not any(n.startswith(("plugins/", "recipes/", "tests/", "cgx_plugins/examples")) for n in wheel_files)


@pytest.mark.multiprocess
def test_the_wheel_declares_the_command_and_every_entry_point(wheel, wheel_files):
    import tomllib

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    (name,) = [n for n in wheel_files if n.endswith(".dist-info/entry_points.txt")]
    with zipfile.ZipFile(wheel) as z:
        text = z.read(name).decode()
    assert "cgx = cgx.cli:main" in text
    assert project["entry-points"]["cgx"]
    for plugin, target in project["entry-points"]["cgx"].items():
        assert f"{plugin} = {target}" in text
        module = target.replace(".", "/")
        assert f"{module}.py" in wheel_files or f"{module}/__init__.py" in wheel_files, target
