"""train.activation_checkpointing: the same gradients as without it, a run that trains with it, and a
generator that does not offer it refused with its name."""
from __future__ import annotations

import copy
import textwrap

import pytest
import torch

import cgx.plugins
from cgx.config import load_config
from cgx.errors import ConfigError
from cgx.plugins import Registry
from cgx.run import main as run_main
from cgx.train.checkpoint import list_checkpoints
from cgx.train.trainer import Trainer

NETS = {
    "resnet": {"ngf": 4, "n_blocks": 2},
    "resnet-dropout": {"ngf": 4, "n_blocks": 2, "dropout": True},
    "unet": {"ngf": 4, "num_downs": 5},
    "unet-dropout": {"ngf": 4, "num_downs": 6, "dropout": True},
}


def gradients(net: torch.nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    torch.manual_seed(3)  # dropout masks: the same draws with and without (checkpoint restores the RNG)
    y = net(x)
    (y * torch.linspace(-1, 1, y.numel()).reshape(y.shape)).sum().backward()
    return {"output": y.detach(), **{k: p.grad.clone() for k, p in net.named_parameters()}}


@pytest.mark.parametrize("variant", list(NETS))
def test_same_gradients_with_and_without(variant):
    name = variant.split("-")[0]
    torch.manual_seed(0)
    plain = cgx.plugins.create("generator", name, **NETS[variant]).train()
    checkpointed = copy.deepcopy(plain)
    checkpointed.enable_activation_checkpointing()
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    want, got = gradients(plain, x), gradients(checkpointed, x)
    assert want.keys() == got.keys()
    for k in want:
        assert torch.allclose(got[k], want[k], rtol=0, atol=1e-6), (k, (got[k] - want[k]).abs().max().item())


def test_checkpointing_keeps_fewer_tensors_for_backward():
    """What the flag is for: the autograd graph holds less (counted, not timed)."""
    def saved_bytes(net):
        total = 0

        def pack(t):
            nonlocal total
            total += t.numel() * t.element_size()
            return t
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            net(torch.rand(1, 3, 64, 64))
        return total

    for name, kwargs in (("resnet", {"ngf": 8, "n_blocks": 4}), ("unet", {"ngf": 8, "num_downs": 6})):
        torch.manual_seed(0)
        net = cgx.plugins.create("generator", name, **kwargs)
        plain = saved_bytes(net)
        net.enable_activation_checkpointing()
        assert saved_bytes(net) < 0.6 * plain, name


def test_eval_and_no_grad_do_not_checkpoint():
    net = cgx.plugins.create("generator", "resnet", ngf=4, n_blocks=1)
    net.enable_activation_checkpointing()
    x = torch.rand(1, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(net(x), net.model(x))


def test_a_run_trains_with_it(make_recipe, tmp_path):
    recipe = make_recipe({"train": {"steps": 2, "ckpt_every": 2, "activation_checkpointing": True}})
    assert run_main([str(recipe)]) == 0
    assert [p.name for p in list_checkpoints(tmp_path / "run" / "checkpoints")] == ["step_00000002"]
    assert load_config(tmp_path / "run" / "config.yaml").train.activation_checkpointing is True


PLAIN_GENERATOR = textwrap.dedent("""
    import torch
    from cgx.plugins import hookimpl

    class Plain(torch.nn.Module):
        def __init__(self, ngf=4, n_blocks=1):  # the tiny recipe's arguments
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x):
            return torch.tanh(self.conv(x))

    @hookimpl
    def cgx_register_generators(register):
        register("plain_gen", Plain)
""")


def test_a_generator_without_it_is_refused_by_name(make_recipe, tmp_path):
    (tmp_path / "plain_gen.py").write_text(PLAIN_GENERATOR)
    recipe = make_recipe({"plugins": ["plain_gen.py"], "model": {"generator": {"name": "plain_gen"}},
                          "train": {"activation_checkpointing": True}})
    with pytest.raises(ConfigError) as e:
        Trainer(load_config(recipe), registry=Registry())
    message = str(e.value)
    assert "\n" not in message
    assert "train.activation_checkpointing=true" in message and "'plain_gen'" in message
    assert "enable_activation_checkpointing()" in message


def test_every_registered_generator_that_offers_it():
    """Contract: any registered generator with enable_activation_checkpointing() keeps its gradients."""
    for name in cgx.plugins.Registry().available("generator"):  # installed ones, not what other tests loaded
        torch.manual_seed(0)
        try:
            plain = cgx.plugins.create("generator", name, ngf=2)
        except Exception:  # noqa: BLE001 -- a third-party plugin with other arguments: its defaults
            plain = cgx.plugins.create("generator", name)
        if not callable(getattr(plain, "enable_activation_checkpointing", None)):
            continue
        checkpointed = copy.deepcopy(plain)
        checkpointed.enable_activation_checkpointing()
        x = torch.rand(1, 3, 256, 256) * 2 - 1  # the built-ins' defaults: unet needs 256
        want, got = gradients(plain.train(), x), gradients(checkpointed.train(), x)
        for k in want:
            assert torch.allclose(got[k], want[k], rtol=0, atol=1e-6), (name, k)
