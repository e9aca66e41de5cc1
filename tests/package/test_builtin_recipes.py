"""The built-in recipes by name (cgx.recipes): wherever a recipe path is accepted, a user's file wins,
an unknown name is one line listing the names; cgx recipes lists and shows them; every recipe's
header comment tells the truth about its precision and its commands name recipes that exist."""
from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from cgx import recipes
from cgx.cli import main as cli
from cgx.config import load_config
from cgx.errors import ConfigError
from cgx.run import main as run_main

REPO = Path(__file__).resolve().parents[2]
FILES = sorted((REPO / "recipes").glob("*.yaml"))


def header(path: Path) -> str:
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        lines.append(line)
    return "\n".join(lines)


def test_the_checkout_recipes_folder_is_the_one_source():
    assert recipes.folder() == REPO / "recipes"
    assert recipes.names() == [p.stem for p in FILES] and "demo" in recipes.names()


def test_cgx_recipes_lists_every_recipe_with_its_first_sentence(capsys):
    assert cli(["recipes"]) == 0
    out = capsys.readouterr().out
    rows = {line.split()[0]: line for line in out.splitlines() if line and not line[0].isspace()}
    for path in FILES:
        assert path.stem in rows, path.stem
        description = rows[path.stem][len(path.stem):].strip()
        assert len(description) >= 20 and not description.endswith((",", "(", ":")), rows[path.stem]
    assert "CycleGAN at 256 px, as in Zhu et al. 2017" in rows["cyclegan_256"]


def test_cgx_recipes_show_prints_the_file(capsys):
    assert cli(["recipes", "show", "cyclegan_256"]) == 0
    assert capsys.readouterr().out == (REPO / "recipes" / "cyclegan_256.yaml").read_text()


def test_cgx_recipes_show_an_unknown_name_is_one_line(capsys):
    assert cli(["recipes", "show", "cyclegan_512"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cyclegan_512" in err and "cyclegan_256" in err and "demo" in err


def test_a_recipe_by_name_is_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # nowhere near recipes/
    by_name, by_path = load_config("cyclegan_256"), load_config(REPO / "recipes" / "cyclegan_256.yaml")
    assert by_name == by_path and by_name.recipe == str(REPO / "recipes" / "cyclegan_256.yaml")
    assert load_config("pix2pix_demo.yaml", ["train.steps=3"]).train.steps == 3


def test_a_users_file_wins_over_the_built_in_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    mine = yaml.safe_load((REPO / "recipes" / "demo.yaml").read_text())
    mine["train"]["steps"] = 7
    Path("demo.yaml").write_text(yaml.safe_dump(mine))
    Path("demo").write_text(yaml.safe_dump({"train": {"steps": 9}}))
    assert load_config("demo.yaml").train.steps == 7 and load_config("demo").train.steps == 9
    assert load_config("demo.yaml").recipe == str(tmp_path / "demo.yaml")
    Path("cyclegan_256").mkdir()  # a folder is no recipe: the name still finds the built-in one
    assert load_config("cyclegan_256").recipe == str(REPO / "recipes" / "cyclegan_256.yaml")
    with pytest.raises(ConfigError, match="recipe file not found: sub .it is not a file"):
        Path("sub").mkdir()
        load_config("sub")


def test_an_unknown_recipe_is_one_line_listing_the_names(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    for given in ("cyclegan256", "sub/demo"):  # a path with a folder is never taken for a name
        assert run_main([given]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"recipe file not found: {given}" in err
        assert "cyclegan_256" in err and "pix2pix_demo" in err and "Traceback" not in err


def test_recipes_keys_is_the_reference(capsys, tmp_path):
    """`cgx recipes keys` prints the generated reference; --check names a stale file in one line."""
    from cgx import recipe_reference

    assert cli(["recipes", "keys"]) == 0
    assert capsys.readouterr().out.strip() == recipe_reference.render().strip()
    stale = tmp_path / "reference.md"
    stale.write_text("old\n")
    assert cli(["recipes", "keys", "--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "reference.md" in err


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_recipe_header_tells_the_truth(path):
    """The comment's claims about precision match train.precision (auto: bf16 where the hardware computes
    it, else fp32: cgx.precision.resolve), and every command in it names a recipe that exists."""
    text, precision = header(path), load_config(path).train.precision
    if precision == "auto":
        assert "fp32 on CPU" not in text
        if "fp32" in text or "bf16" in text:
            assert re.search(r"bf16 where\s.*else\s+(#\s*)?fp32", text, re.S), text
    elif precision == "fp32":
        assert "bf16" not in text
    elif precision == "bf16":
        assert "fp32 on" not in text
    for name in re.findall(r"-m cgx\.run (\S+)", text):
        assert name in recipes.names(), f"{path.name}: its command names {name}"
    assert "recipes/" not in " ".join(re.findall(r"-m cgx\.run \S+", text))


@pytest.mark.slow
def test_python_m_cgx_run_trains_a_recipe_by_name(tmp_path, monkeypatch, demo_data, capsys):
    monkeypatch.chdir(tmp_path)
    tiny = ["data.source=folder", f"data.root={demo_data}", "train.run_dir=runs/demo", "train.steps=2",
            "train.ckpt_every=2", "train.image_every=0", "train.progress=false", "train.precision=fp32",
            "model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4",
            "model.discriminator.n_layers=2", "data.load_size=32", "data.crop_size=32", "data.workers=0",
            "buffer.size=2"]
    assert run_main(["demo", *tiny]) == 0
    assert "trained 2 steps" in capsys.readouterr().out
    saved = yaml.safe_load((tmp_path / "runs" / "demo" / "config.yaml").read_text())
    assert saved["method"]["name"] == "cyclegan" and saved["optim"]["decay_steps"] == 300  # the demo recipe's
