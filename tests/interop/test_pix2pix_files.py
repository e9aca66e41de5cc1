"""The authors' pix2pix files (``latest_net_G.pth``: U-Net 256 with batch norm and dropout, ``latest_net_D.pth``:
the conditional 70x70 PatchGAN on 6 channels): imported into a pix2pix run, translated from directly, and
exported back unchanged, from cgx's own pix2pix runs too."""
from __future__ import annotations

import pytest
import torch
import yaml

from cgx.cli import main as cli
from cgx.infer import load_generators, translate_batch
from cgx.interop.export import export_authors

from authors_nets import NLayerDiscriminator, UnetGenerator


def with_stats(net: torch.nn.Module, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    for m in net.modules():  # non-trivial batch-norm statistics, so that they are seen to travel
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
            m.weight.data.uniform_(0.5, 1.5)
    return net.eval()


def authors_files(folder, num_downs: int, ngf: int, n_layers: int):
    """The authors' latest_net_G.pth (their UnetGenerator, batch norm, dropout) and latest_net_D.pth
    (NLayerDiscriminator on input_nc + output_nc = 6 channels) in a new ``folder``, seeded."""
    torch.manual_seed(0)
    G = with_stats(UnetGenerator(3, 3, num_downs, ngf, norm="batch", use_dropout=True), 1)
    D = with_stats(NLayerDiscriminator(6, ngf, n_layers, norm="batch"), 2)
    folder.mkdir()
    torch.save(G.state_dict(), folder / "latest_net_G.pth")
    torch.save(D.state_dict(), folder / "latest_net_D.pth")
    return folder, G, D


@pytest.fixture
def authors_pix2pix(tmp_path):
    """An authors' pix2pix checkpoint folder: unet_256 (8 levels; ngf 8 to stay small), batch norm, dropout;
    NLayerDiscriminator on input_nc + output_nc = 6 channels."""
    return authors_files(tmp_path / "facades_pix2pix", num_downs=8, ngf=8, n_layers=3)


def test_import_translate_and_export_the_authors_pix2pix_files(authors_pix2pix, tmp_path):
    folder, G, D = authors_pix2pix
    run = tmp_path / "imported"
    assert cli(["import", str(folder), "--out", str(run)]) == 0
    recipe = yaml.safe_load((run / "config.yaml").read_text())
    assert recipe["method"] == {"name": "pix2pix", "direction": "AtoB", "l1_weight": 100.0}
    assert recipe["data"]["paired"] is True and recipe["loss"]["gan"]["name"] == "vanilla"
    assert recipe["model"]["generator"] == {"name": "unet", "in_channels": 3, "out_channels": 3, "ngf": 8,
                                            "num_downs": 8, "norm": "batch"}
    x = torch.rand(2, 3, 256, 256, generator=torch.Generator().manual_seed(3)) * 2 - 1
    with torch.no_grad():
        want = G(x)
    for source in (run, folder / "latest_net_G.pth"):  # the imported run, and the file itself
        gens = load_generators(source)
        assert gens.F is None
        torch.testing.assert_close(translate_batch(gens.G, x), want, rtol=1e-5, atol=1e-5)
    with pytest.raises(Exception, match="holds no BtoA generator"):
        gens.net("BtoA")

    written = export_authors(run, tmp_path / "out")
    assert sorted(p.name for p in written) == ["latest_net_D.pth", "latest_net_G.pth"]
    for net, name in ((G, "latest_net_G.pth"), (D, "latest_net_D.pth")):
        back = torch.load(tmp_path / "out" / name, weights_only=True)
        original = net.state_dict()
        assert list(back) == list(original)
        assert all(torch.equal(back[k], original[k]) for k in original), name


def test_a_cgx_pix2pix_run_exports_files_the_authors_networks_load(make_paired_recipe, tmp_path):
    from cgx.run import main as run_main

    recipe = make_paired_recipe({"method": {"direction": "BtoA"}, "train": {"steps": 2, "ckpt_every": 2}})
    assert run_main([str(recipe)]) == 0
    written = export_authors(tmp_path / "run", tmp_path / "out")
    G = UnetGenerator(3, 3, 5, 4, norm="batch", use_dropout=True)
    D = NLayerDiscriminator(6, 4, 2, norm="batch")
    G.load_state_dict(torch.load(tmp_path / "out/latest_net_G.pth", weights_only=True), strict=True)
    D.load_state_dict(torch.load(tmp_path / "out/latest_net_D.pth", weights_only=True), strict=True)
    assert len(written) == 2
    gens = load_generators(tmp_path / "run")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    torch.testing.assert_close(translate_batch(gens.net("BtoA"), x), G.eval()(x), rtol=1e-5, atol=1e-5)
    from cgx.errors import CheckpointError
    with pytest.raises(CheckpointError, match="holds no AtoB generator.* use --direction BtoA"):
        gens.net("AtoB")


def test_a_pix2pix_recipe_starts_from_the_authors_pix2pix_files(make_paired_recipe, tmp_path):
    """train.init_from with the authors' pix2pix folder (networks of the recipe's shape)."""
    from cgx.config import load_config
    from cgx.plugins import Registry
    from cgx.train.trainer import Trainer

    folder, G, D = authors_files(tmp_path / "theirs", num_downs=5, ngf=4, n_layers=2)
    trainer = Trainer(load_config(make_paired_recipe({"train": {"init_from": str(folder)}})), registry=Registry())
    try:
        assert trainer.initialised_from.startswith("G from")
        x = torch.rand(1, 3, 32, 32) * 2 - 1
        with torch.no_grad():
            torch.testing.assert_close(trainer.gens.module.G.eval()(x), G(x))
    finally:
        trainer.close()
