"""A checkpoint (or a run folder someone hands you) runs no code: inference and export load only
built-in and installed plugins and the modules the user names with --plugins (issue 17 cases 1, 11)."""
from __future__ import annotations

from pathlib import Path

import pytest

from cgx.cli import main as cli_main
from cgx.config import load_config
from cgx.errors import PluginError
from cgx.infer import load_generators
from cgx.plugins import Registry
from cgx.train.trainer import Trainer

EVIL = '''
from pathlib import Path
Path(__file__).with_name("EXECUTED").write_text("*** evil_plugin.py executed ***")

from cgx.plugins import hookimpl
from cgx_plugins.generators.resnet import build_resnet


@hookimpl
def cgx_register_generators(register):
    register("evilgen", build_resnet)
'''


def train_with_plugin(make_recipe, tmp_path: Path, generator: str) -> tuple[Path, Path]:
    """A 2-step run whose recipe loads evil_plugin.py (beside the recipe); returns (run, marker)."""
    (tmp_path / "evil_plugin.py").write_text(EVIL)
    recipe = make_recipe({"plugins": ["evil_plugin.py"], "model": {"generator": {"name": generator}},
                          "train": {"steps": 2, "ckpt_every": 2, "image_every": 0}})
    trainer = Trainer(load_config(recipe), registry=Registry())
    try:
        trainer.fit()
    finally:
        trainer.close()
    marker = tmp_path / "EXECUTED"
    assert marker.is_file()  # training names the module itself: it ran there
    marker.unlink()
    return tmp_path / "run", marker


def test_a_checkpoint_whose_recipe_names_a_plugin_module_translates_without_running_it(
        make_recipe, tmp_path, demo_data, capsys):
    run, marker = train_with_plugin(make_recipe, tmp_path, "resnet")
    out = tmp_path / "out"
    assert cli_main(["translate", str(run), str(demo_data / "testA"), str(out), "--no-progress"]) == 0
    assert not marker.exists(), "translate imported a plugin module named by the checkpoint"
    assert len(list(out.glob("*.png"))) == 2
    for command in (["grid", str(run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "-o", str(tmp_path / "grid.png")],
                    ["export", str(run), "--format", "torchscript", "--out", str(tmp_path / "g.pt")]):
        assert cli_main(command) == 0, capsys.readouterr().err
        assert not marker.exists(), f"cgx {command[0]} imported a plugin module named by the checkpoint"


def test_a_generator_from_a_stored_plugin_is_a_named_error_until_the_user_names_the_module(
        make_recipe, tmp_path, demo_data, capsys):
    run, marker = train_with_plugin(make_recipe, tmp_path, "evilgen")
    out = tmp_path / "out"
    assert cli_main(["translate", str(run), str(demo_data / "testA"), str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and not marker.exists()
    assert "evilgen" in err and "--plugins" in err and "model.generator.name" in err
    assert str(run / "checkpoints" / "step_00000002" / "train.pt") in err
    assert str(tmp_path / "recipe.yaml") not in err  # the training machine's recipe path is not this file

    with pytest.raises(PluginError, match="evilgen"):
        load_generators(run, registry=Registry())
    gens = load_generators(run, registry=Registry(), plugins=[str(tmp_path / "evil_plugin.py")])
    assert marker.is_file() and gens.G is not None  # the user named it: it runs
