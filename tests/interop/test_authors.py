"""The authors' network files: key layout, architecture inference, round trips, equal outputs."""
from __future__ import annotations

import pytest
import torch

from cgx import plugins
from cgx.cli import main as cli
from cgx.config import ComponentConfig
from cgx.errors import CheckpointError
from cgx.infer import load_generators, translate_batch
from cgx.interop import authors

from authors_nets import NLayerDiscriminator, ResnetGenerator, UnetGenerator

# (cgx plugin, its arguments, the authors' network with the same architecture)
VARIANTS = {
    "resnet_6blocks": ("resnet", {"ngf": 4, "n_blocks": 6}, lambda: ResnetGenerator(3, 3, 4, n_blocks=6)),
    "resnet_9blocks": ("resnet", {"ngf": 8, "n_blocks": 9}, lambda: ResnetGenerator(3, 3, 8, n_blocks=9)),
    "resnet_dropout": ("resnet", {"ngf": 4, "n_blocks": 3, "dropout": True},
                       lambda: ResnetGenerator(3, 3, 4, use_dropout=True, n_blocks=3)),
    "resnet_batchnorm": ("resnet", {"ngf": 4, "n_blocks": 2, "norm": "batch"},
                         lambda: ResnetGenerator(3, 3, 4, norm="batch", n_blocks=2)),
    "unet_64": ("unet", {"ngf": 4, "num_downs": 6}, lambda: UnetGenerator(3, 3, 6, 4)),
    "unet_batchnorm": ("unet", {"ngf": 4, "num_downs": 5, "norm": "batch"}, lambda: UnetGenerator(3, 3, 5, 4, norm="batch")),
}
FULL_ARGS = {"resnet": {"in_channels": 3, "out_channels": 3, "norm": "instance", "dropout": False},
             "unet": {"in_channels": 3, "out_channels": 3, "norm": "instance"},
             "patchgan": {"in_channels": 3, "norm": "instance"}}


def cgx_net(name: str, args: dict, seed: int = 0):
    torch.manual_seed(seed)
    kind = "discriminator" if name == "patchgan" else "generator"
    net = plugins.create(kind, name, **args)
    for m in net.modules():  # batch norm: non-trivial statistics, so that they are seen to travel
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return net.eval()


def images(n=2, h=64, w=64, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, h, w, generator=g) * 2 - 1


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_generator_round_trip_and_equal_to_the_authors_network(variant, tmp_path):
    name, args, theirs_factory = VARIANTS[variant]
    ours = cgx_net(name, args)
    exported = authors.to_authors(ComponentConfig(name, args), ours.state_dict(), "test")

    theirs = theirs_factory()
    theirs.load_state_dict(exported, strict=True)  # their module tree accepts exactly these keys
    theirs.eval()

    path = tmp_path / "latest_net_G_A.pth"
    torch.save(theirs.state_dict(), path)  # as their save_networks writes it
    back = authors.read_generator(path)
    assert back.section == ComponentConfig(name, {**FULL_ARGS[name], **args})
    assert back.state.keys() == ours.state_dict().keys()
    for k, v in ours.state_dict().items():
        assert torch.equal(back.state[k], v), k

    x = images()
    with torch.no_grad():
        expected = theirs(x)
        gens = load_generators(path)  # what cgx translate / grid use
        got = translate_batch(gens.net("AtoB"), x)
    diff = (got - expected).abs().max().item()
    print(f"{variant}: max |cgx - authors| = {diff:.3g}")
    assert diff <= 1e-5


@pytest.mark.parametrize("n_layers", [2, 3])
def test_patchgan_round_trip_and_equal_to_the_authors_network(n_layers, tmp_path):
    args = {"ndf": 4, "n_layers": n_layers}
    ours = cgx_net("patchgan", args)
    theirs = NLayerDiscriminator(3, 4, n_layers)
    theirs.load_state_dict(authors.to_authors(ComponentConfig("patchgan", args), ours.state_dict(), "test"), strict=True)
    path = tmp_path / "latest_net_D_A.pth"
    torch.save(theirs.state_dict(), path)
    back = authors.read_discriminator(path)
    assert back.section == ComponentConfig("patchgan", {**FULL_ARGS["patchgan"], **args})
    rebuilt = cgx_net("patchgan", args, seed=5)
    rebuilt.load_state_dict(back.state)
    x = images()
    with torch.no_grad():
        diff = (rebuilt(x) - theirs.eval()(x)).abs().max().item()
    print(f"patchgan n_layers={n_layers}: max |cgx - authors| = {diff:.3g}")
    assert diff <= 1e-5


def test_the_resnet_key_layout_is_the_authors(tmp_path):
    state = authors.to_authors(ComponentConfig("resnet", {"ngf": 4, "n_blocks": 9}),
                               cgx_net("resnet", {"ngf": 4, "n_blocks": 9}).state_dict(), "test")
    assert "model.1.weight" in state and "model.26.weight" in state  # first and last 7x7 conv
    assert {k.split(".")[1] for k in state if ".conv_block." in k} == {str(i) for i in range(10, 19)}
    assert "model.10.conv_block.5.weight" in state and "model.10.conv_block.6.weight" not in state
    dropout = authors.to_authors(ComponentConfig("resnet", {"ngf": 4, "n_blocks": 1, "dropout": True}),
                                 cgx_net("resnet", {"ngf": 4, "n_blocks": 1, "dropout": True}).state_dict(), "test")
    assert "model.10.conv_block.6.weight" in dropout and "model.10.conv_block.5.weight" not in dropout


def test_a_file_with_stale_instance_norm_statistics_loads(tmp_path):
    args = {"ngf": 4, "n_blocks": 2}
    ours = cgx_net("resnet", args)
    old = ResnetGenerator(3, 3, 4, norm="instance_with_stats", n_blocks=2)
    old.load_state_dict(authors.to_authors(ComponentConfig("resnet", args), ours.state_dict(), "test"), strict=False)
    state = old.state_dict()  # the weights plus running_mean/var/num_batches_tracked of every instance norm
    assert "model.2.running_mean" in state and "model.10.conv_block.6.num_batches_tracked" in state
    path = tmp_path / "old_net_G.pth"
    torch.save(state, path)
    back = authors.read_generator(path)
    assert len(back.dropped) == 3 * (3 + 2 * 2 + 2)  # 3 stats of 9 instance norms: 3 down, 2 per block, 2 up
    assert back.section == ComponentConfig("resnet", {**FULL_ARGS["resnet"], **args})
    for k, v in ours.state_dict().items():
        assert torch.equal(back.state[k], v), k


@pytest.mark.parametrize("extra", ["model.10.conv_block.9.weight", "model.1.running_mean", "model.99.weight"])
def test_a_foreign_key_is_an_error_naming_it(extra, tmp_path, capsys, demo_data):
    args = {"ngf": 4, "n_blocks": 2}
    state = authors.to_authors(ComponentConfig("resnet", args), cgx_net("resnet", args).state_dict(), "test")
    state[extra] = torch.zeros(4)  # model.1 is a conv: running stats there are not stale norm statistics
    path = tmp_path / "odd.pth"
    torch.save(state, path)
    with pytest.raises(CheckpointError, match=f"unexpected key '{extra}'"):
        authors.read_generator(path)
    assert cli(["translate", str(path), str(demo_data / "testA"), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cgx: error: ") and f"'{extra}'" in err and str(path) in err


def test_a_missing_key_and_a_wrong_shape_are_errors_naming_the_key(tmp_path):
    args = {"ngf": 4, "n_blocks": 2}
    state = authors.to_authors(ComponentConfig("resnet", args), cgx_net("resnet", args).state_dict(), "test")
    broken = {k: v for k, v in state.items() if k != "model.11.conv_block.5.bias"}
    with pytest.raises(CheckpointError, match="missing key 'model.11.conv_block.5.bias'"):
        authors.generator_from_authors(broken, "f.pth")
    state["model.4.weight"] = torch.zeros(8, 4, 5, 5)
    with pytest.raises(CheckpointError, match=r"model.4.weight has shape \(8, 4, 5, 5\)"):
        authors.generator_from_authors(state, "f.pth")


def test_cgx_translate_takes_an_authors_generator_file(tmp_path, demo_data):
    name, args, factory = VARIANTS["resnet_6blocks"]
    theirs = factory()
    theirs.load_state_dict(authors.to_authors(ComponentConfig(name, args), cgx_net(name, args).state_dict(), "t"))
    path = tmp_path / "horse2zebra.pth"
    torch.save(theirs.state_dict(), path)
    out = tmp_path / "out"
    assert cli(["translate", str(path), str(demo_data / "testA"), str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.png"))) == len(list((demo_data / "testA").iterdir()))
    with pytest.raises(CheckpointError, match="holds no BtoA generator, only AtoB; use --direction AtoB"):
        load_generators(path).net("BtoA")


def test_a_file_that_is_no_authors_network_is_refused(tmp_path):
    path = tmp_path / "x.pth"
    torch.save({"encoder.weight": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="not an authors' generator"):
        authors.read_generator(path)
    torch.save([1, 2], path)
    with pytest.raises(CheckpointError, match="not a network state dict"):
        authors.read_file(path)
