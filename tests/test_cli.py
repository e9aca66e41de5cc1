"""The commands a user types: cgx --help, cgx plugins, recipe errors through cgx.run, paper recipes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from cgx import plugins
from cgx.cli import main as cli_main
from cgx.config import load_config
from cgx.run import main as run_main

REPO = Path(__file__).resolve().parents[1]


def test_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as e:
        cli_main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for cmd in ("train", "translate", "grid", "eval", "plugins", "demo-data", "import", "export", "datasets", "recipes",
                "sweep"):
        assert cmd in out


@pytest.mark.multiprocess
def test_run_help_explains_overrides():
    proc = subprocess.run([sys.executable, "-m", "cgx.run", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    assert "torchrun --nproc_per_node=N -m cgx.run" in proc.stdout and "train.steps=200" in proc.stdout


def test_plugins_json_lists_every_registered_component(capsys):
    assert cli_main(["plugins", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    listed = {(r["kind"], r["name"]) for r in rows}
    expected = {(k, n) for k in plugins.KINDS for n in plugins.available(k)}
    assert listed == expected and ("generator", "resnet") in listed
    assert all(r["source"] for r in rows)
    builtins = [r for r in rows if (r["kind"], r["name"]) in {("generator", "resnet"), ("generator", "unet"),
                                                               ("discriminator", "patchgan"), ("adversarial_loss", "lsgan"),
                                                               ("reconstruction_loss", "l1"), ("buffer", "image_pool")}]
    assert len(builtins) == 6 and all(r["source"].startswith("cgx ") and "entry point" in r["source"] for r in builtins)


def test_plugins_table(capsys):
    assert cli_main(["plugins"]) == 0
    out = capsys.readouterr().out
    assert "patchgan" in out and "cgx_plugins.discriminators.patchgan" in out


@pytest.mark.parametrize("recipe,blocks,size,params", [
    ("cyclegan_256.yaml", 9, 256, 11_378_179),
    ("cyclegan_128.yaml", 6, 128, 7_837_699),
])
def test_paper_recipes(recipe, blocks, size, params):
    cfg = load_config(REPO / "recipes" / recipe)
    g = plugins.create("generator", cfg.model.generator.name, **cfg.model.generator.args)
    d = plugins.create("discriminator", cfg.model.discriminator.name, **cfg.model.discriminator.args)
    assert sum(p.numel() for p in g.parameters()) == params
    assert sum(p.numel() for p in d.parameters()) == 2_764_737
    assert (cfg.data.crop_size, cfg.model.generator.args["n_blocks"]) == (size, blocks)
    assert (cfg.optim.lr, cfg.optim.betas, cfg.optim.decay_epochs, cfg.train.epochs) == (2e-4, [0.5, 0.999], 100, 200)
    method = plugins.create("method", cfg.method.name, **cfg.method.args)
    assert (method.cycle_weight, method.identity_weight, cfg.buffer.args["size"]) == (10.0, 5.0, 50)
    assert cfg.train.batch_size == 1 and cfg.loss.gan.name == "lsgan"


def test_demo_recipe_loads():
    cfg = load_config(REPO / "recipes" / "demo.yaml")
    assert cfg.train.precision == "auto" and cfg.data.root == "data/demo"


# --- bad input stops with a message that names the problem, exit code 2 ---------------------------

def run_error(argv, capsys) -> str:
    assert run_main([str(a) for a in argv]) == 2
    return capsys.readouterr().err


def test_missing_recipe(tmp_path, capsys):
    assert f"recipe file not found: {tmp_path / 'nope.yaml'}" in run_error([tmp_path / "nope.yaml"], capsys)


def test_unknown_key_names_key_and_section(make_recipe, capsys):
    err = run_error([make_recipe(), "train.stpes=3"], capsys)
    assert "unknown key 'train.stpes' in section 'train'" in err and "steps" in err


def test_wrong_type(make_recipe, capsys):
    assert "train.batch_size must be an integer" in run_error([make_recipe(), "train.batch_size=two"], capsys)


def test_unknown_plugin_lists_available(make_recipe, capsys):
    err = run_error([make_recipe({"model": {"discriminator": {"name": "stylegan"}}})], capsys)
    assert "model.discriminator" in err and "unknown discriminator 'stylegan'" in err and "patchgan" in err


def test_mistyped_plugin_argument_lists_accepted(make_recipe, capsys):
    err = run_error([make_recipe(), "model.generator.n_blcks=3"], capsys)
    assert "model.generator" in err and "'n_blcks'" in err and "n_blocks: int" in err


def test_empty_data_folder(make_recipe, tmp_path, capsys):
    (tmp_path / "empty/trainA").mkdir(parents=True)
    (tmp_path / "empty/trainB").mkdir(parents=True)
    err = run_error([make_recipe({"data": {"root": str(tmp_path / "empty")}})], capsys)
    assert f"no images in {tmp_path / 'empty/trainA'}" in err


def test_missing_data_folder(make_recipe, tmp_path, capsys):
    err = run_error([make_recipe({"data": {"root": str(tmp_path / "nowhere")}})], capsys)
    assert "data.root: folder not found" in err and "trainA" in err


def test_unreadable_recipe(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed")
    assert "not valid YAML" in run_error([bad], capsys)


def test_no_work_is_lost_to_a_bad_recipe(make_recipe, tmp_path, capsys):
    """An error in the recipe stops before the run folder is touched."""
    run_error([make_recipe({"model": {"generator": {"name": "nope"}}})], capsys)
    assert not (tmp_path / "run").exists()


def test_a_reconstruction_loss_as_the_gan_loss_fails_before_step_1(make_recipe, tmp_path, capsys):
    err = run_error([make_recipe(), "loss.gan=l1"], capsys)
    assert "loss.gan" in err and "unknown adversarial_loss 'l1' ('l1' is a reconstruction_loss)" in err
    assert "lsgan" in err and not (tmp_path / "run").exists()


def test_a_factory_returning_a_non_module_fails_before_step_1(make_recipe, tmp_path, capsys):
    (tmp_path / "bad_gen.py").write_text(
        "from cgx.plugins import hookimpl\n\n"
        "@hookimpl\n"
        "def cgx_register_generators(register):\n"
        "    register('not_a_module', lambda **kwargs: [kwargs])\n")
    err = run_error([make_recipe({"plugins": ["bad_gen.py"], "model": {"generator": {"name": "not_a_module"}}})],
                    capsys)
    assert "generator 'not_a_module' from " in err and "bad_gen.py" in err
    assert "builtins.list" in err and "torch.nn.Module" in err and "cgx.plugins.types.Generator" in err
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_yaml_string_numbers_work_for_plugin_arguments(make_recipe, tmp_path):
    """YAML reads 2e-2 as a string; recipe keys and plugin arguments coerce it alike."""
    assert run_main([str(make_recipe()), "model.discriminator.init_std=2e-2", "optim.lr=2e-4", "train.steps=1"]) == 0
    saved = load_config(tmp_path / "run" / "config.yaml")
    assert saved.model.discriminator.args["init_std"] == 0.02 and saved.optim.lr == 2e-4


def test_unknown_recipe_section_names_the_accepted_ones(make_recipe, capsys):
    err = run_error([make_recipe(), "dist.strategy=ddp"], capsys)
    assert "unknown key 'dist' in the top level" in err and "distributed" in err


# --- issue 26's smaller items: each as a user meets it ----------------------------------------------

@pytest.mark.multiprocess
@pytest.mark.parametrize("argv", [["datasets", "list"], ["datasets", "list", "--json"], ["plugins"], ["recipes"]],
                         ids=" ".join)
def test_a_closed_pipe_is_no_traceback(argv):
    """`cgx datasets list | head`: the reader leaves before cgx writes; no traceback, no 'Exception ignored'."""
    import os

    read, write = os.pipe()
    os.close(read)  # as `head` that has read its lines: every write now meets a closed pipe
    try:
        proc = subprocess.run([sys.executable, "-m", "cgx.cli", *argv], stdout=write, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.stderr == "" and proc.returncode == 141


def test_a_bad_key_on_the_command_line_is_blamed_on_the_command_line(make_recipe, capsys):
    recipe = make_recipe()
    err = run_error([recipe, "train.stepz=3"], capsys)
    assert err.startswith("cgx: error: command-line override 'train.stepz=3': unknown key 'train.stepz'")
    assert str(recipe) not in err and err.count("\n") == 1
    err = run_error([recipe, "train.batch_size=-2"], capsys)
    assert err.startswith("cgx: error: command-line override 'train.batch_size=-2': train.batch_size must be positive")
    err = run_error([recipe, "data.a={channels: x}"], capsys)
    assert err.startswith("cgx: error: command-line override 'data.a={channels: x}': data.a.channels must be")


def test_a_bad_key_in_the_recipe_file_is_still_blamed_on_the_file(make_recipe, capsys):
    recipe = make_recipe({"train": {"stepz": 3}})
    err = run_error([recipe, "train.steps=2"], capsys)
    assert err.startswith(f"cgx: error: {recipe}: unknown key 'train.stepz'") and "override" not in err


def test_a_missing_data_root_says_how_to_fetch_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    err = run_error(["cyclegan_256"], capsys)  # data.root: datasets/horse2zebra
    assert "data.root: folder not found: datasets/horse2zebra" in err
    assert "cgx datasets fetch horse2zebra downloads it" in err and err.count("\n") == 1
    err = run_error(["pix2pix_256", f"data.root={tmp_path / 'sets' / 'facades'}"], capsys)
    assert f"cgx datasets fetch pix2pix/facades --to {tmp_path / 'sets'}" in err
    err = run_error(["cyclegan_256", "data.root=mine"], capsys)
    assert "cgx datasets fetch NAME --to ." in err and "cgx datasets list" in err


def test_init_from_weights_of_another_shape_names_the_key_both_shapes_and_the_file(tiny_run, make_recipe, tmp_path,
                                                                                   capsys):
    wider = [str(make_recipe()), "model.generator.ngf=8", f"train.init_from={tiny_run}"]
    err = run_error(wider, capsys)
    assert "train.init_from:" in err and "train.pt: its generators do not fit the recipe's" in err
    assert "key 'G.model.1.weight' has shape [4, 3, 7, 7] in the file, [8, 3, 7, 7] in the recipe's network" in err
    assert cli_main(["export", str(tiny_run), "--format", "authors", "--out", str(tmp_path / "authors")]) == 0
    err = run_error([*wider[:-1], f"train.init_from={tmp_path / 'authors'}"], capsys)
    assert f"{tmp_path / 'authors' / 'latest_net_G_A.pth'}" in err and "does not fit the recipe's network G" in err
    assert "has shape [4, 3, 7, 7] in the file, [8, 3, 7, 7] in the recipe's network" in err and err.count("\n") == 1
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_training_an_imported_run_says_what_starts_fresh_and_why(tiny_run, make_recipe, tmp_path, capsys):
    assert cli_main(["export", str(tiny_run), "--format", "authors", "--out", str(tmp_path / "authors")]) == 0
    assert cli_main(["import", str(tmp_path / "authors"), "--out", str(tmp_path / "imported"),
                     "--recipe", str(make_recipe())]) == 0
    capsys.readouterr()
    assert run_main([str(tmp_path / "imported" / "config.yaml"), "train.steps=1", "train.ckpt_every=1"]) == 0
    out = capsys.readouterr().out
    assert "step_00000000: no per-rank state in it (cgx import writes none" in out and "start fresh" in out
    assert "ranks" not in out and "this run has" not in out


@pytest.mark.multiprocess
def test_building_the_parser_and_datasets_help_import_no_torch():
    """A command that needs no network (cgx datasets, --help) never imports torch: the archive-bomb tests run
    it under a 1 GiB address-space cap that torch's own mappings would exceed."""
    code = ("import sys; from cgx.cli import main\n"
            "try:\n    main(['datasets', 'fetch', '--help'])\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert out.strip().endswith("[]"), out[-300:]
