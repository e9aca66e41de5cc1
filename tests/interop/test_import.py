"""cgx import, fine-tuning an imported run, train.init_from, and cgx export --format authors."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml
from authors_nets import NLayerDiscriminator, ResnetGenerator
from conftest import TINY_RECIPE, assert_clean_exit, load_weights, merge, torchrun

from cgx.cli import main as cli
from cgx.config import load_config
from cgx.errors import CheckpointError
from cgx.run import main as run_main
from cgx.train.checkpoint import list_checkpoints
from cgx.train.trainer import Trainer

# The authors' networks of TINY_RECIPE's architecture (resnet ngf 4, 1 block; patchgan ndf 4, 2 layers).
AUTHORS = {"G_A": lambda: ResnetGenerator(3, 3, 4, n_blocks=1), "G_B": lambda: ResnetGenerator(3, 3, 4, n_blocks=1),
           "D_A": lambda: NLayerDiscriminator(3, 4, 2), "D_B": lambda: NLayerDiscriminator(3, 4, 2)}


@pytest.fixture
def authors_folder(tmp_path) -> Path:
    """An authors' checkpoint folder (random weights, a different seed per network)."""
    folder = tmp_path / "checkpoints" / "tiny_cyclegan"
    folder.mkdir(parents=True)
    for i, (name, factory) in enumerate(AUTHORS.items()):
        torch.manual_seed(100 + i)
        net = factory()
        for p in net.parameters():
            torch.nn.init.normal_(p, 0.0, 0.1)
        torch.save(net.state_dict(), folder / f"latest_net_{name}.pth")
    return folder


def tiny_recipe(tmp_path: Path, demo_data: Path, **train) -> Path:
    recipe = merge(TINY_RECIPE, {"data": {"root": str(demo_data)}, "train": {"run_dir": str(tmp_path / "run"), **train}})
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def theirs(folder: Path, name: str) -> dict:
    return torch.load(folder / f"latest_net_{name}.pth", weights_only=True)


def assert_holds_authors_weights(weights: dict, folder: Path) -> None:
    """cgx weights (as conftest.load_weights gives them: G.G.*, G.F.*, D.D_A.*, D.D_B.*) equal the authors'
    files, with their naming: G_A is G, G_B is F, their D_A (judges B) is cgx's D_B, their D_B is cgx's D_A."""
    for ours, name in (("G.G", "G_A"), ("G.F", "G_B"), ("D.D_B", "D_A"), ("D.D_A", "D_B")):
        for k, v in theirs(folder, name).items():
            key = ours + "." + k.replace(".conv_block.", ".body.")
            assert torch.equal(weights[key], v), (ours, k)


def trainer_weights(trainer: Trainer) -> dict:
    return {**{f"G.{k}": v for k, v in trainer.gens.module.state_dict().items()},
            **{f"D.{k}": v for k, v in trainer.groups["discriminators"].module.state_dict().items()}}


@pytest.mark.multiprocess
def test_import_an_authors_folder_then_fine_tune_under_torchrun(authors_folder, tmp_path, demo_data, capsys):
    run = tmp_path / "imported"
    base = tiny_recipe(tmp_path, demo_data)
    assert cli(["import", str(authors_folder), "--out", str(run), "--recipe", str(base)]) == 0
    assert "fine-tune:" in capsys.readouterr().out
    recipe = load_config(run / "config.yaml")
    assert recipe.model.generator.to_dict() == {"name": "resnet", "in_channels": 3, "out_channels": 3, "ngf": 4,
                                                "n_blocks": 1, "norm": "instance", "dropout": False}
    assert recipe.model.discriminator.to_dict() == {"name": "patchgan", "in_channels": 3, "ndf": 4, "n_layers": 2,
                                                    "norm": "instance"}
    assert Path(recipe.train.run_dir) == run.resolve()
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000000"]
    assert_holds_authors_weights(load_weights(run, 0), authors_folder)

    proc = torchrun(2, str(run / "config.yaml"), "train.steps=2", "train.ckpt_every=2")
    assert_clean_exit(proc)
    assert "resumed from" in proc.stdout and "step_00000000 at step 0" in proc.stdout
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000000", "step_00000002"]
    before, after = load_weights(run, 0), load_weights(run, 2)
    assert_holds_authors_weights(before, authors_folder)  # the import itself is kept
    assert any(not torch.equal(before[k], after[k]) for k in before)  # trained from it


def test_import_a_single_pretrained_generator(tmp_path, demo_data, capsys):
    torch.manual_seed(0)
    net = ResnetGenerator(3, 3, 4, n_blocks=1)
    torch.save(net.state_dict(), tmp_path / "horse2zebra.pth")
    run = tmp_path / "h2z"
    assert cli(["import", str(tmp_path / "horse2zebra.pth"), "--out", str(run), "--set", f"data.root={demo_data}"]) == 0
    out = capsys.readouterr().out
    assert "F, D_A, D_B: not given" in out
    weights = load_weights(run, 0)
    for k, v in net.state_dict().items():
        assert torch.equal(weights["G.G." + k.replace(".conv_block.", ".body.")], v)
    assert load_config(run / "config.yaml").data.root == str(demo_data)
    # an existing run folder is never written over
    assert cli(["import", str(tmp_path / "horse2zebra.pth"), "--out", str(run)]) == 2
    assert "already exists and is not empty" in capsys.readouterr().err
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000000"]


def test_import_refuses_a_pair_of_different_architectures(authors_folder, tmp_path):
    torch.save(ResnetGenerator(3, 3, 8, n_blocks=1).state_dict(), authors_folder / "latest_net_G_B.pth")
    from cgx.interop.importer import import_run

    with pytest.raises(CheckpointError, match="latest_net_G_B.pth: F is .*ngf.: 8.* but G .* is"):
        import_run([authors_folder], tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_init_from_an_authors_folder_starts_a_new_run_from_its_weights(authors_folder, tmp_path, demo_data):
    recipe = tiny_recipe(tmp_path, demo_data, steps=2, ckpt_every=2)
    trainer = Trainer(load_config(recipe, [f"train.init_from={authors_folder}"]))
    try:
        assert_holds_authors_weights(trainer_weights(trainer), authors_folder)
        assert trainer.step == 0 and not trainer.gens.optimizer.state  # networks only; optimizer fresh
        trainer.fit()
    finally:
        trainer.close()
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002"]


def test_init_from_a_cgx_run_and_not_when_resuming(tmp_path, demo_data, capsys):
    first = tiny_recipe(tmp_path, demo_data, steps=2, ckpt_every=2)
    assert run_main([str(first)]) == 0
    source = load_weights(tmp_path / "run")
    second = [str(first), f"train.run_dir={tmp_path / 'second'}", f"train.init_from={tmp_path / 'run'}",
              "train.steps=4", "train.ckpt_every=2"]
    trainer = Trainer(load_config(second[0], second[1:]))
    try:
        weights = trainer_weights(trainer)
        assert weights.keys() == source.keys() and all(torch.equal(weights[k], source[k]) for k in source)
        trainer.fit(until=2)
    finally:
        trainer.close()
    capsys.readouterr()
    trainer = Trainer(load_config(second[0], second[1:]))  # resumes its own step-2 checkpoint instead
    try:
        assert trainer.initialised_from is None and trainer.step == 2
    finally:
        trainer.close()


def test_init_from_weights_that_do_not_fit_the_recipe(authors_folder, tmp_path, demo_data):
    recipe = tiny_recipe(tmp_path, demo_data)
    with pytest.raises(CheckpointError, match="train.init_from: .*latest_net_G_A.pth .* does not fit the recipe's network G"):
        Trainer(load_config(recipe, [f"train.init_from={authors_folder}", "model.generator.ngf=8"]))


def test_export_authors_files_load_into_the_authors_networks(tmp_path, demo_data, capsys):
    recipe = tiny_recipe(tmp_path, demo_data, steps=2, ckpt_every=2)
    assert run_main([str(recipe)]) == 0
    run = tmp_path / "run"
    assert cli(["export", str(run), "--format", "authors"]) == 0
    out = run / "export" / "authors"
    assert sorted(p.name for p in out.iterdir()) == [f"latest_net_{n}.pth" for n in ("D_A", "D_B", "G_A", "G_B")]
    ours = load_weights(run)
    for name, factory in AUTHORS.items():
        net = factory()
        net.load_state_dict(theirs(out, name), strict=True)
    assert_holds_authors_weights(ours, out)
    # export -> import -> the same tensors
    assert cli(["import", str(out), "--out", str(tmp_path / "again")]) == 0
    back = load_weights(tmp_path / "again", 0)
    assert back.keys() == ours.keys() and all(torch.equal(back[k], ours[k]) for k in ours)
    # existing files are not replaced without --force
    capsys.readouterr()
    assert cli(["export", str(run), "--format", "authors"]) == 2
    assert "already exists" in capsys.readouterr().err
    assert cli(["export", str(run), "--format", "authors", "--force"]) == 0
