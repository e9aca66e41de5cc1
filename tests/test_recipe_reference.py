"""cgx.recipe_reference: docs/recipe-reference.md is generated from cgx/config.py and kept fresh."""
from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass
from pathlib import Path

import pytest

from cgx import recipe_reference
from cgx.config import ComponentConfig, Config, ConfigError, ImageSpec, OptimConfig, OptimGroupConfig, load_config

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "docs" / "recipe-reference.md"


def leaf_keys(cls=Config, prefix: str = "") -> list[str]:
    """Every dotted recipe key, walked independently of the module under test (``optim.<group>``: the keys of
    one network group's section)."""
    out = [f"{prefix}<group>.{f.name}" for f in dataclasses.fields(OptimGroupConfig)] if cls is OptimConfig else []
    for f in dataclasses.fields(cls):
        tp = typing.get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(tp) and tp is not ComponentConfig:
            out += leaf_keys(tp, f"{prefix}{f.name}.")
        else:
            out.append(f"{prefix}{f.name}")
    return out


def test_the_reference_file_is_up_to_date(capsys):
    assert recipe_reference.main(["--check", str(REFERENCE)]) == 0, capsys.readouterr().err


def test_a_stale_reference_fails_the_check_with_one_line(tmp_path, capsys):
    stale = tmp_path / "recipe-reference.md"
    stale.write_text(REFERENCE.read_text().replace("| `train.seed` | int | `0` |", "| `train.seed` | int | `1` |"))
    assert recipe_reference.main(["--check", str(stale)]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "out of date" in err and str(stale) in err and recipe_reference.COMMAND in err


def test_a_missing_reference_fails_the_check(tmp_path, capsys):
    assert recipe_reference.main(["--check", str(tmp_path / "absent.md")]) == 1
    assert "cannot read" in capsys.readouterr().err


def test_output_writes_what_render_gives(tmp_path):
    out = tmp_path / "ref.md"
    assert recipe_reference.main(["-o", str(out)]) == 0
    assert out.read_text() == recipe_reference.render()


def test_every_recipe_key_is_in_the_reference_with_a_meaning():
    rows = {k.key: k for _, _, keys in recipe_reference.sections() for k in keys}
    assert sorted(rows) == sorted(leaf_keys())
    text = recipe_reference.render()
    for key, row in rows.items():
        assert row.meaning.strip() and row.type and row.default, key
        assert f"| `{key}` |" in text


def test_every_key_in_the_reference_is_accepted_with_its_default(tmp_path):
    """Each documented key exists: overriding it with its documented default loads the same recipe."""
    recipe = tmp_path / "r.yaml"
    recipe.write_text("{}\n")
    base = load_config(recipe).to_dict()
    rows = [k for _, _, keys in recipe_reference.sections() for k in keys if k.key != "recipe"]  # set by the loader
    for row in rows:
        key = row.key.replace("<group>", "discriminators")  # a group's section: any group of the method
        assert load_config(recipe, [f"{key}={row.default}"]).to_dict() == base, row.key


# A value outside what the reference says is accepted, for each key whose check is written in code.
OUTSIDE = {
    "optim.betas": ["optim.betas=[0.5, 1.0]"],
    "distributed.zero_stage": ["distributed.strategy=deepspeed", "distributed.zero_stage=3"],
    "distributed.offload_optimizer": ["distributed.offload_optimizer=true"],
    "data.a.channels": ["data.a.channels=65"],
    "data.b.channels": ["data.b.channels=0"],
    "data.a.max_pixels": ["data.a.max_pixels=0"],
    "data.b.max_pixels": ["data.b.max_pixels=-1"],
    "data.load_size": ["data.load_size=100", "data.crop_size=128"],
    "eval.every": ["eval.every=150", "train.ckpt_every=100"],
    "eval.max_images": ["eval.max_images=1"],
    "eval.batch_size": ["eval.batch_size=0"],
    "eval.bands": ["eval.bands=[0, 0, 1]"],
}


def test_every_check_in_code_has_a_hostile_case():
    assert set(OUTSIDE) == set(recipe_reference.CHECKED_IN_CODE)


@pytest.mark.parametrize("key", sorted(OUTSIDE))
def test_values_outside_what_the_reference_accepts_are_refused(key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, OUTSIDE[key])


@dataclass
class _Undocumented:
    documented: int = 1
    """Has a meaning."""
    forgotten: int = 2


def test_a_key_without_a_docstring_is_refused_naming_it():
    with pytest.raises(ValueError, match=r"_Undocumented\.forgotten"):
        recipe_reference.sections(_Undocumented)


def test_image_specs_are_documented_per_domain():
    names = [name for name, _, _ in recipe_reference.sections()]
    assert "data.a" in names and "data.b" in names
    assert {f.name for f in dataclasses.fields(ImageSpec)} == {"channels", "depth", "max_pixels"}
