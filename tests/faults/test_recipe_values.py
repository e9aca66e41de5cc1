"""Cases 11 and 12: out-of-range recipe values and plugin arguments are one-line errors naming the key."""
from __future__ import annotations

import pytest

from cgx.cli import main as cli_main
from cgx.config import RANGES, ConfigError, load_config


@pytest.mark.parametrize("override,words", [
    ("optim.betas=[2,3]", ["optim.betas[0] must be in [0, 1), got 2"]),
    ("optim.betas=[0.5,1.0]", ["optim.betas[1] must be in [0, 1), got 1.0"]),
    ("train.image_every=-1", ["train.image_every must be >= 0, got -1"]),
    ("optim.decay_steps=-5", ["optim.decay_steps must be >= 0, got -5"]),
    ("method.cycle_weight=-10", ["method: method 'cyclegan'", "cycle_weight must be >= 0, got -10"]),
    ("method.identity_weight=-1", ["identity_weight must be >= 0"]),
    ("optim.lr=.nan", ["optim.lr must be positive, got nan"]),
    ("optim.lr=0", ["optim.lr must be positive, got 0"]),
    ("optim.momentum=1.5", ["optim.momentum must be in [0, 1), got 1.5"]),
    ("distributed.timeout_min=0", ["distributed.timeout_min must be positive"]),
    ("train.steps=0", ["train.steps must be positive"]),
])
def test_out_of_range_value(make_recipe, capsys, override, words):
    assert cli_main(["train", str(make_recipe()), override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgx: error: ") and "\n" not in err, err
    for w in words:
        assert w in err, err
    assert f"command-line override {override!r}" in err  # names where the value came from (issue 26)
    if override.startswith("method."):  # a plugin's arguments: the recipe's section and the override made them
        assert f"recipe.yaml with command-line override {override!r}: method:" in err


@pytest.mark.parametrize("key,low,high,low_ok", RANGES)
def test_every_ranged_key_refuses_just_outside_and_accepts_the_bound(key, low, high, low_ok):
    """Each entry of the table is enforced: the lowest accepted value loads, one below is refused."""
    section, name = key.split(".")
    outside = low if not low_ok else low - 1
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [f"{key}={outside}"])
    if high is not None:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(None, [f"{key}={high}"])
    inside = low if low_ok else (low + 1 if high is None else (low + high) / 2)
    extra = ["data.preprocess=none"] if key in ("data.crop_size", "data.load_size") else []
    cfg = load_config(None, [f"{key}={inside}", *extra])
    assert getattr(getattr(cfg, section), name) == inside


@pytest.mark.parametrize("override,key", [
    ("model.generator.ngf=-4", "model.generator"),
    ("model.generator.n_blocks=-1", "model.generator"),
    ("model.discriminator.ndf=0", "model.discriminator"),
    ("buffer.size=-2", "buffer"),
])
def test_a_plugin_refusing_its_arguments_names_the_recipe_key(make_recipe, capsys, tmp_path, override, key):
    assert cli_main(["train", str(make_recipe()), override]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgx: error: ") and "\n" not in err and "Traceback" not in err, err
    arg = override.split(".")[-1].split("=")[0]
    assert f": {key}: " in err and f"{arg}=" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()  # refused before any work
