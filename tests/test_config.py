"""cgx.config: paper-exact defaults, YAML recipes, dotted overrides, and errors that name the problem."""
from __future__ import annotations

import dataclasses

import pytest
import yaml

from cgx import plugins
from cgx.config import (
    ComponentConfig,
    Config,
    ConfigError,
    apply_override,
    config_from_dict,
    dump_config,
    load_config,
)


def write(tmp_path, recipe: dict, name: str = "recipe.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(recipe))
    return path


# --- defaults ------------------------------------------------------------------------------------


def test_defaults_are_the_papers():
    cfg = load_config(None)
    assert cfg.optim.name == "adam"
    assert cfg.optim.lr == 2e-4
    assert cfg.optim.betas == [0.5, 0.999]
    assert cfg.method == ComponentConfig("cyclegan", {})
    method = plugins.create("method", cfg.method.name)
    assert (method.cycle_weight, method.identity_weight) == (10.0, 5.0)
    assert cfg.loss.gan.name == "lsgan"
    assert cfg.loss.cycle.name == "l1"
    assert cfg.buffer == ComponentConfig("image_pool", {"size": 50})
    assert cfg.model.generator == ComponentConfig("resnet", {"n_blocks": 9})
    assert cfg.model.discriminator.name == "patchgan"
    assert cfg.train.batch_size == 1
    assert cfg.data.load_size == 286 and cfg.data.crop_size == 256
    assert cfg.recipe is None


def test_default_instances_do_not_share_mutable_fields():
    a, b = Config(), Config()
    a.optim.betas.append(1.0)
    a.model.generator.args["n_blocks"] = 6
    assert b.optim.betas == [0.5, 0.999]
    assert b.model.generator.args == {"n_blocks": 9}


# --- loading -------------------------------------------------------------------------------------


def test_load_recipe_file(tmp_path):
    path = write(tmp_path, {
        "model": {"generator": {"name": "resnet", "ngf": 32, "n_blocks": 6}, "discriminator": "patchgan"},
        "method": {"name": "cyclegan", "cycle_weight": 5, "identity_weight": 0},
        "optim": {"lr": 0.001, "betas": [0.9, 0.99]},
        "data": {"root": "somewhere", "load_size": 143, "crop_size": 128, "flip": False},
        "train": {"steps": 10, "batch_size": 4, "precision": "bf16"},
        "plugins": ["extra.py"],
    })
    cfg = load_config(path)
    assert cfg.model.generator == ComponentConfig("resnet", {"ngf": 32, "n_blocks": 6})
    assert cfg.model.discriminator == ComponentConfig("patchgan", {})
    assert cfg.method == ComponentConfig("cyclegan", {"cycle_weight": 5, "identity_weight": 0})
    assert cfg.optim.lr == 0.001 and cfg.optim.betas == [0.9, 0.99]
    assert (cfg.data.root, cfg.data.load_size, cfg.data.crop_size, cfg.data.flip) == ("somewhere", 143, 128, False)
    assert (cfg.train.steps, cfg.train.batch_size, cfg.train.precision) == (10, 4, "bf16")
    assert cfg.plugins == ["extra.py"]
    # untouched sections keep their defaults
    assert cfg.train.epochs == 200 and cfg.buffer.args == {"size": 50}
    assert cfg.recipe == str(path.resolve())


def test_empty_recipe_file_gives_defaults(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("")
    cfg = load_config(path)
    cfg.recipe = None
    assert cfg == Config()


# --- overrides -----------------------------------------------------------------------------------


def test_overrides_on_a_recipe(tmp_path):
    path = write(tmp_path, {"model": {"generator": {"name": "resnet"}}, "train": {"steps": 5}})
    cfg = load_config(path, ["train.steps=200", "optim.lr=1e-4", "model.generator.n_blocks=6"])
    assert cfg.train.steps == 200
    # PyYAML reads "1e-4" (no dot) as a string; it must still become the float 1e-4.
    assert cfg.optim.lr == 1e-4 and type(cfg.optim.lr) is float
    assert cfg.model.generator == ComponentConfig("resnet", {"n_blocks": 6})


def test_overrides_on_defaults():
    cfg = load_config(None, ["train.steps=200", "optim.lr=1e-4", "optim.betas=[0.9, 0.99]",
                             "data.flip=false", "train.precision=bf16"])
    assert cfg.train.steps == 200
    assert cfg.optim.lr == 1e-4 and type(cfg.optim.lr) is float
    assert cfg.optim.betas == [0.9, 0.99]
    assert cfg.data.flip is False
    assert cfg.train.precision == "bf16"


def test_override_of_a_default_plugin_argument():
    cfg = load_config(None, ["model.generator.n_blocks=6"])
    assert cfg.model.generator == ComponentConfig("resnet", {"n_blocks": 6})


def test_override_last_one_wins():
    cfg = load_config(None, ["train.steps=3", "train.steps=7"])
    assert cfg.train.steps == 7


def test_override_null_resets_optional():
    cfg = load_config(None, ["train.steps=5", "train.steps=null"])
    assert cfg.train.steps is None


def test_malformed_override_without_equals():
    with pytest.raises(ConfigError, match=r"train\.steps200.*key=value"):
        load_config(None, ["train.steps200"])


def test_override_with_empty_key_part():
    with pytest.raises(ConfigError, match=r"empty part"):
        apply_override({}, "train..steps=3")


def test_override_into_a_value_that_is_not_a_section():
    raw = {"train": {"steps": 3}}
    with pytest.raises(ConfigError, match=r"train\.steps is not a section"):
        apply_override(raw, "train.steps.x=1")


# --- errors --------------------------------------------------------------------------------------


def test_missing_recipe_names_the_path(tmp_path):
    missing = tmp_path / "nope" / "recipe.yaml"
    with pytest.raises(ConfigError) as e:
        load_config(missing)
    assert str(missing) in str(e.value)


def test_invalid_yaml_names_the_file(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError) as e:
        load_config(path)
    assert str(path) in str(e.value)


def test_recipe_must_be_a_mapping(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(path)


def test_unknown_key_names_dotted_key_and_lists_accepted(tmp_path):
    path = write(tmp_path, {"train": {"stepz": 10}})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "'train.stepz'" in msg
    assert str(path) in msg
    accepted = msg.split("accepted keys:")[1]
    for f in dataclasses.fields(type(Config().train)):
        assert f.name in accepted


def test_unknown_key_from_override_and_top_level():
    with pytest.raises(ConfigError, match=r"'optim\.lrr'.*accepted keys:.*\blr\b"):
        load_config(None, ["optim.lrr=1"])
    with pytest.raises(ConfigError, match=r"'trian'.*top level.*accepted keys:.*train"):
        load_config(None, ["trian.steps=1"])


@pytest.mark.parametrize("override, key, what", [
    ("train.steps=abc", "train.steps", "integer"),
    ("train.batch_size=1.5", "train.batch_size", "integer"),
    ("train.batch_size=true", "train.batch_size", "integer"),
    ("optim.lr=fast", "optim.lr", "number"),
    ("data.flip=1", "data.flip", "true or false"),
    ("data.root=3", "data.root", "string"),
    ("optim.betas=0.5", "optim.betas", "list"),
    ("optim.betas=[0.5, x]", r"optim.betas[1]", "number"),
])
def test_wrong_type_names_key(override, key, what):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert key in str(e.value)
    assert what in str(e.value)


def test_literal_not_allowed_lists_allowed_values():
    with pytest.raises(ConfigError) as e:
        load_config(None, ["train.precision=fp8"])
    msg = str(e.value)
    assert "train.precision" in msg and "'fp8'" in msg
    for allowed in ("fp32", "bf16", "fp16"):
        assert allowed in msg


def test_load_size_smaller_than_crop_size(tmp_path):
    path = write(tmp_path, {"data": {"load_size": 200, "crop_size": 256}})
    with pytest.raises(ConfigError) as e:
        load_config(path)
    msg = str(e.value)
    assert "data.load_size" in msg and "data.crop_size" in msg and "200" in msg and "256" in msg
    # with preprocess "crop" there is no resize, so the sizes are not compared
    ok = load_config(path, ["data.preprocess=crop"])
    assert ok.data.load_size == 200


@pytest.mark.parametrize("override, key", [
    ("train.batch_size=0", "train.batch_size"),
    ("train.steps=-1", "train.steps"),
    ("optim.lr=0", "optim.lr"),
    ("data.workers=-1", "data.workers"),
    ("optim.betas=[0.5]", "optim.betas"),
])
def test_out_of_range_values(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(None, [override])


def test_component_section_without_name_updates_the_default(tmp_path):
    path = write(tmp_path, {"buffer": {"size": 3}})
    assert load_config(path).buffer == ComponentConfig("image_pool", {"size": 3})


def test_component_section_with_another_name_drops_the_default_args(tmp_path):
    path = write(tmp_path, {"model": {"generator": {"name": "unet", "depth": 7}}})
    assert load_config(path).model.generator == ComponentConfig("unet", {"depth": 7})


def test_override_on_a_plugin_given_by_name_only(tmp_path):
    path = write(tmp_path, {"model": {"generator": "resnet"}})
    assert load_config(path, ["model.generator.n_blocks=6"]).model.generator == ComponentConfig("resnet", {"n_blocks": 6})


def test_component_name_must_be_a_string(tmp_path):
    path = write(tmp_path, {"buffer": {"name": 3}})
    with pytest.raises(ConfigError, match=r"buffer\.name must be the name of a registered plugin"):
        load_config(path)


def test_config_error_is_a_value_error():
    assert issubclass(ConfigError, ValueError)


# --- round trip ----------------------------------------------------------------------------------


def test_to_dict_round_trip_defaults():
    cfg = Config()
    again = config_from_dict(cfg.to_dict())
    assert again == cfg


def test_to_dict_round_trip_loaded(tmp_path):
    path = write(tmp_path, {"model": {"generator": {"name": "resnet", "ngf": 16, "n_blocks": 3}},
                            "buffer": {"name": "image_pool", "size": 0}, "plugins": ["a.py"]})
    cfg = load_config(path, ["train.steps=11", "optim.lr=3e-5", "train.precision=bf16"])
    plain = cfg.to_dict()
    assert plain["model"]["generator"] == {"name": "resnet", "ngf": 16, "n_blocks": 3}
    assert config_from_dict(plain) == cfg


def test_dump_config_round_trip(tmp_path):
    cfg = load_config(None, ["train.steps=11", "optim.lr=1e-4"])
    out = tmp_path / "config.yaml"
    dump_config(cfg, out)
    again = load_config(out)
    again.recipe = cfg.recipe
    assert again == cfg
