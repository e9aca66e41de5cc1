"""``cgx plugins new KIND NAME [DIR]``: the package it writes, as a plugin author uses it: generated,
``pip install``-ed (into a folder of its own on PYTHONPATH, never into this venv), its own tests run
(they call cgx.testing), and a few training steps from its recipe, all in fresh processes. Then what it
refuses: an unknown kind, a bad name, a folder that exists (a link included)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cgx.cli import main
from cgx.data.demo import generate
from cgx.plugins import scaffold

REPO = Path(__file__).resolve().parents[2]


def run(args: list[str], cwd: Path, site: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    path = [str(site)] if site else []
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join([*path, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=cwd)


def cgx(*args: str, cwd: Path, site: Path | None = None) -> subprocess.CompletedProcess:
    return run([sys.executable, "-c", "import sys; from cgx.cli import main; sys.exit(main())", *args], cwd, site)


def pip_install(package: Path, site: Path, cwd: Path) -> None:
    """``pip install`` into ``site`` (``--target``): its module and .dist-info (the entry point) land there,
    seen by processes that have it on PYTHONPATH; this venv is never touched. Offline, no deps."""
    try:
        import setuptools  # noqa: F401

        offline = ["--no-build-isolation", "--no-index"]
    except ImportError:
        offline = []
    r = run([sys.executable, "-m", "pip", "install", "--no-deps", *offline, "--quiet", "--target", str(site),
             str(package), "--disable-pip-version-check"], cwd)
    assert r.returncode == 0, r.stderr


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.parametrize("kind, name", [("method", "my_refiner"),
                                        pytest.param("discriminator", "my_disc", marks=pytest.mark.long)])
def test_new_package_installs_passes_its_tests_and_trains(kind, name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["plugins", "new", kind, name]) == 0  # (in this process: the command itself is quick)
    package = tmp_path / f"cgx-{name.replace('_', '-')}"
    assert f"pip install -e {package.name}" in capsys.readouterr().out
    site = tmp_path / "site"
    pip_install(package, site, tmp_path)
    assert (site / f"cgx_{name}.py").is_file()

    listed = cgx("plugins", "show", name, cwd=tmp_path, site=site)
    assert listed.returncode == 0, listed.stderr
    assert listed.stdout.startswith(f"{kind} {name}: ")
    assert f"cgx-{name.replace('_', '-')} 0.1.0 (entry point {name} = cgx_{name})" in listed.stdout

    tests = run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package)], package, site)
    assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
    assert ("3 passed" if kind == "discriminator" else "2 passed") in tests.stdout

    generate(tmp_path / "data", n_train=4, n_test=2, size=32)  # what `cgx demo-data data` writes, smaller
    recipe = yaml.safe_load((package / "recipe.yaml").read_text())
    assert recipe["data"]["root"] == "data"  # what the README's `cgx demo-data data` writes
    small = ["train.steps=2", "train.batch_size=1", "train.ckpt_every=2", "train.progress=false",
             "data.load_size=36", "data.crop_size=32", "data.workers=0", "train.precision=fp32"]
    trained = run([sys.executable, "-m", "cgx.run", str(package / "recipe.yaml"), *small], tmp_path, site)
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "trained 2 steps" in trained.stdout
    assert (tmp_path / "runs" / name / "checkpoints" / "step_00000002" / "train.pt").is_file()


@pytest.mark.parametrize("kind", ["generator", "adversarial_loss", "reconstruction_loss", "buffer", "logger", "augment",
                                  "segmenter"])
def test_the_package_s_own_tests_pass(kind, tmp_path, monkeypatch):
    """The kinds the multiprocess test above does not install: the package's tests, called in this
    process with the package's folder on sys.path (they do what pytest would: each test_ function)."""
    import importlib.util
    import inspect

    from cgx.plugins import Registry

    folder, _ = scaffold.write(kind, f"my_{kind}", tmp_path / "pkg")
    monkeypatch.syspath_prepend(str(folder))
    spec = importlib.util.spec_from_file_location(f"test_my_{kind}", folder / "tests" / f"test_cgx_my_{kind}.py")
    tests = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tests)
    ran = []
    for name, fn in vars(tests).items():
        if name.startswith("test_") and callable(fn):
            wanted = inspect.signature(fn).parameters
            fn(**{k: v for k, v in {"monkeypatch": monkeypatch, "tmp_path": tmp_path / name}.items() if k in wanted})
            ran.append(name)
    assert len(ran) == 2, ran
    if kind != "generator":  # a recipe naming it, through the recipe's checks
        recipe = yaml.safe_load((folder / "recipe.yaml").read_text())
        registry = Registry()
        registry.load_module(str(folder / f"cgx_my_{kind}.py"))
        assert f"my_{kind}" in registry.available(kind)
        assert f"my_{kind}" in str(recipe)


@pytest.mark.parametrize("kind", scaffold.KINDS_WITH_TEMPLATES)
def test_every_template_compiles(kind):
    import tomllib

    files = scaffold.render(kind, "some_name")
    for rel, text in files.items():
        if rel.endswith(".py"):
            compile(text, rel, "exec")
    assert tomllib.loads(files["pyproject.toml"])["project"]["entry-points"]["cgx"] == {"some_name": "cgx_some_name"}
    recipe = yaml.safe_load(files["recipe.yaml"])
    from cgx.config import config_from_dict
    from cgx.train.components import component_sections

    cfg = config_from_dict(recipe, where="recipe.yaml")  # a valid recipe, naming the plugin where its kind goes
    if kind == "segmenter":  # a section inside the method's: method.semantic.network
        assert cfg.to_dict()["method"]["semantic"]["network"]["name"] == "some_name"
    else:
        assert "some_name" in [section.name for k, section in component_sections(cfg).values() if k == kind]


def test_refused_kind_and_name(capsys, tmp_path):
    assert main(["plugins", "new", "loss", "mine", str(tmp_path / "a")]) == 2
    assert "unknown plugin kind 'loss'; kinds: method, generator, discriminator, adversarial_loss" in capsys.readouterr().err
    assert main(["plugins", "new", "method", "My-Method", str(tmp_path / "b")]) == 2
    assert "name 'My-Method' must be lower-case" in capsys.readouterr().err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_an_existing_folder_or_link_is_never_written_into(capsys, tmp_path):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "pyproject.toml").write_text("mine")
    link = tmp_path / "link"
    link.symlink_to(mine)
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    for folder in (mine, link, dangling):
        assert main(["plugins", "new", "method", "x", str(folder)]) == 2
        assert f"{folder} already exists" in capsys.readouterr().err
    assert (mine / "pyproject.toml").read_text() == "mine" and sorted(os.listdir(mine)) == ["pyproject.toml"]
    assert not (tmp_path / "nowhere").exists()


def test_new_writes_the_package(capsys, tmp_path):
    assert main(["plugins", "new", "generator", "tiny_gen", str(tmp_path / "pkg")]) == 0
    files = sorted(str(p.relative_to(tmp_path / "pkg")) for p in (tmp_path / "pkg").rglob("*") if p.is_file())
    assert files == ["README.md", "cgx_tiny_gen.py", "pyproject.toml", "recipe.yaml", "tests/test_cgx_tiny_gen.py"]
    toml = (tmp_path / "pkg" / "pyproject.toml").read_text()
    assert '[project.entry-points.cgx]\ntiny_gen = "cgx_tiny_gen"' in toml and 'name = "cgx-tiny-gen"' in toml
