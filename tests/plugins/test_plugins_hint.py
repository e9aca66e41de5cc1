"""The ``--plugins`` hint of a run whose generator came from a module its recipe named: the path it
prints works from the working directory (the recipe wrote it relative to the recipe's own folder)."""
from __future__ import annotations

import os
import shlex

from cgx.cli import main as cli_main
from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.trainer import Trainer

PLUGIN = '''
from cgx.plugins import hookimpl
from cgx_plugins.generators.resnet import build_resnet


@hookimpl
def cgx_register_generators(register):
    register("hintgen", build_resnet)
'''


def test_the_plugins_hint_is_a_path_from_the_working_directory(make_recipe, tmp_path, demo_data, capsys, monkeypatch):
    (tmp_path / "my_plugins").mkdir()
    (tmp_path / "my_plugins" / "hint_plugin.py").write_text(PLUGIN)
    recipe = make_recipe({"plugins": ["my_plugins/hint_plugin.py"], "model": {"generator": {"name": "hintgen"}},
                          "train": {"steps": 2, "ckpt_every": 2, "image_every": 0}})
    trainer = Trainer(load_config(recipe), registry=Registry())
    try:
        trainer.fit()
    finally:
        trainer.close()
    elsewhere = tmp_path / "work" / "here"
    elsewhere.mkdir(parents=True)
    monkeypatch.chdir(elsewhere)  # not the recipe's folder: "my_plugins/hint_plugin.py" means nothing here
    args = ["translate", str(tmp_path / "run"), str(demo_data / "testA"), str(tmp_path / "out"), "--no-progress"]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "--plugins " in err
    hinted = shlex.split(err.split("--plugins ", 1)[1])[0]
    assert os.path.isfile(hinted) and os.path.samefile(hinted, tmp_path / "my_plugins" / "hint_plugin.py")
    assert cli_main([*args, "--plugins", hinted]) == 0  # as printed
