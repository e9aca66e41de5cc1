"""Third-party plugins end to end, in fresh processes as a user runs them:

- the example package (plugins/examples/cgx-example-disc) pip-installed into a folder of its own
  (``pip install --target``, on the PYTHONPATH of the processes started here: this venv is never
  touched): its own tests pass (cgx.testing's checks), ``cgx plugins`` lists it, a recipe naming it
  trains, ``CGX_LOAD_PLUGINS`` hides it, the same module named by path in a recipe as well registers
  once, and a different module claiming its name is a duplicate naming both sources and what to remove;
- the same module loaded by path from a recipe, without installation;
- broken installed plugins (raising at import, registering a built-in's name): a clear error naming the
  plugin and its source, and ``CGX_LOAD_PLUGINS`` skips them.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.multiprocess  # every test here starts processes

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "plugins" / "examples" / "cgx-example-disc"
MODULE = EXAMPLE / "cgx_example_disc.py"
DIST = "cgx-example-disc"
SOURCE = f"{DIST} 0.1.0 (entry point example_global = cgx_example_disc)"


def run(args: list[str], env: dict | None = None, timeout: int = 240) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", **(env or {})}
    for key, value in list(full_env.items()):
        if value is None:
            del full_env[key]
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=full_env, cwd=REPO)


def cgx(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / "cgx"
    cmd = [str(script)] if script.exists() else [sys.executable, "-c", "import sys; from cgx.cli import main; sys.exit(main())"]
    return run([*cmd, *args], env=env)


def train(recipe: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "cgx.run", str(recipe)], env=env)


def pip(*args: str) -> subprocess.CompletedProcess:
    return run([sys.executable, "-m", "pip", *args, "--disable-pip-version-check"])


def listed(env: dict | None = None) -> list[dict]:
    r = cgx("plugins", "--json", env=env)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def example_recipe(make_recipe, plugins: list[str] | None = None, name: str = "recipe.yaml") -> Path:
    """The tiny recipe with the example discriminator (and optionally extra plugin modules)."""
    path = make_recipe({"train": {"steps": 2, "ckpt_every": 100}}, name=name)
    raw = yaml.safe_load(path.read_text())
    raw["model"]["discriminator"] = {"name": "example_global", "width": 8, "n_down": 3}
    if plugins:
        raw["plugins"] = plugins
    path.write_text(yaml.safe_dump(raw))
    return path


def assert_trained(r: subprocess.CompletedProcess, recipe: Path) -> None:
    assert r.returncode == 0, r.stderr[-3000:]
    assert "trained 2 steps" in r.stdout
    run_dir = Path(yaml.safe_load(recipe.read_text())["train"]["run_dir"])
    assert (run_dir / "checkpoints" / "step_00000002" / "train.pt").is_file()


@contextlib.contextmanager
def installed(example: Path, dist: str, tmp_path: Path):
    """pip-install an example package (a copy, so no build files land in the repository) into a folder of
    its own (``--target``: the module and its .dist-info with the entry point); yields the environment
    (PYTHONPATH) under which processes see it installed. This venv is never touched."""
    src = tmp_path / f"{dist}_src"
    site = tmp_path / f"{dist}_site"
    shutil.copytree(example, src, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
    try:  # build with this venv's setuptools, offline; a venv without it builds in isolation (from PyPI)
        import setuptools  # noqa: F401

        offline = ["--no-build-isolation", "--no-index"]
    except ImportError:
        offline = []
    r = pip("install", "--no-deps", *offline, "--quiet", "--target", str(site), str(src))
    assert r.returncode == 0, r.stderr
    yield {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def own_tests(example: Path, env: dict) -> subprocess.CompletedProcess:
    """The example package's own tests (they call cgx.testing), as its author runs them, installed."""
    return run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--rootdir", str(example),
                str(example)], env=env)


@pytest.fixture
def installed_example(tmp_path):
    with installed(EXAMPLE, DIST, tmp_path) as env:
        yield env


def test_installed_example_package(installed_example, make_recipe, tmp_path):
    env = installed_example
    tests = own_tests(EXAMPLE, env)
    assert tests.returncode == 0 and "3 passed" in tests.stdout, tests.stdout[-3000:] + tests.stderr[-2000:]

    rows = listed(env)
    mine = [row for row in rows if row["name"] == "example_global"]
    assert mine == [{"kind": "discriminator", "name": "example_global", "source": SOURCE}]
    assert {"patchgan", "resnet"} <= {row["name"] for row in rows}  # alongside the built-ins
    table = cgx("plugins", env=env)
    assert table.returncode == 0 and "example_global" in table.stdout and SOURCE in table.stdout

    recipe = example_recipe(make_recipe)
    assert_trained(train(recipe, env), recipe)

    # CGX_LOAD_PLUGINS limits installed plugins by entry-point or distribution name
    assert "example_global" not in {row["name"] for row in listed({**env, "CGX_LOAD_PLUGINS": "cgx"})}
    only = listed({**env, "CGX_LOAD_PLUGINS": DIST})
    assert [row["name"] for row in only] == ["example_global"]

    # installed and named by path in the recipe as well (the way from a first file to a package): the
    # same module (the file installed is a copy of it), registered once
    both = example_recipe(make_recipe, plugins=[str(MODULE)], name="both.yaml")
    assert_trained(train(both, env), both)

    # a different module claiming the name: a duplicate naming both sources and what to remove
    other = tmp_path / "my_plugins" / "my_global.py"
    other.parent.mkdir()
    other.write_text(MODULE.read_text().replace("width: int = 32", "width: int = 16"))
    clash = example_recipe(make_recipe, plugins=["my_plugins/my_global.py"], name="clash.yaml")
    r = train(clash, env)
    assert r.returncode == 2, r.stderr
    assert "duplicate discriminator name 'example_global'" in r.stderr
    assert SOURCE in r.stderr and str(other) in r.stderr
    assert f"pip uninstall {DIST}" in r.stderr and "remove my_plugins/my_global.py from the recipe's plugins" in r.stderr


def test_example_module_loaded_by_path_from_a_recipe(make_recipe):
    assert "example_global" not in {row["name"] for row in listed()}  # not installed
    recipe = example_recipe(make_recipe, plugins=[str(MODULE)])
    assert_trained(train(recipe), recipe)  # (paths relative to the recipe: tests/plugins/test_registry.py)


# --- broken installed plugins -----------------------------------------------------------------------


def fake_installed(site: Path, dist: str, module: str, source: str) -> dict:
    """An installed distribution as pip lays it out (module + .dist-info with a ``cgx`` entry point),
    on a path only the subprocesses see: the shared venv is never broken for anyone else."""
    site.mkdir(parents=True, exist_ok=True)
    (site / f"{module}.py").write_text(source)
    info = site / f"{dist.replace('-', '_')}-0.1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1.0\n")
    (info / "entry_points.txt").write_text(f"[cgx]\n{module.removeprefix('cgx_')} = {module}\n")
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def test_plugin_raising_at_import_names_itself_and_can_be_skipped(tmp_path, make_recipe):
    env = fake_installed(tmp_path / "site", "cgx-broken", "cgx_broken",
                         "raise RuntimeError('this plugin is broken on purpose')\n")
    r = cgx("plugins", env=env)
    assert r.returncode == 2
    for words in ("plugin 'broken'", "cgx-broken 0.1.0 (entry point broken = cgx_broken)", "failed to import",
                  "RuntimeError: this plugin is broken on purpose", "CGX_LOAD_PLUGINS"):
        assert words in r.stderr, r.stderr
    assert "Traceback" not in r.stderr

    recipe = make_recipe({"train": {"steps": 2, "ckpt_every": 100}})
    skip = {**env, "CGX_LOAD_PLUGINS": "cgx"}
    assert {"patchgan", "resnet", "lsgan"} <= {row["name"] for row in listed(skip)}
    assert_trained(train(recipe, env=skip), recipe)


def test_plugin_registering_a_builtin_name_names_both_and_can_be_skipped(tmp_path):
    env = fake_installed(tmp_path / "site", "cgx-clash", "cgx_clash", (
        "from cgx.plugins import hookimpl\n"
        "@hookimpl\n"
        "def cgx_register_discriminators(register):\n"
        "    register('patchgan', lambda: None)\n"))
    r = cgx("plugins", env=env)
    assert r.returncode == 2
    assert "duplicate discriminator name 'patchgan'" in r.stderr
    assert "cgx-clash 0.1.0 (entry point clash = cgx_clash)" in r.stderr
    assert "entry point patchgan = cgx_plugins.discriminators.patchgan" in r.stderr
    assert "patchgan" in {row["name"] for row in listed({**env, "CGX_LOAD_PLUGINS": "cgx"})}
