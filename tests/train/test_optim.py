"""The optimizer implementations (optim.implementation) step the same: fused, foreach and the
for-loop agree to float rounding over a few steps, on channels_last weights too; auto picks fused
where torch has it; a checkpoint keeps the loading run's choice."""
from __future__ import annotations

import copy

import pytest
import torch

from conftest import norm_cancelled_biases

from cgx import plugins
from cgx.config import load_config
from cgx.train.optim import build_optimizer

STEPS = 4


def net(channels_last: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    G = plugins.create("generator", "resnet", ngf=4, n_blocks=1)
    return G.to(memory_format=torch.channels_last) if channels_last else G


def train(model, optimizer, steps: int = STEPS, seed: int = 1) -> list[float]:
    data = torch.Generator().manual_seed(seed)
    losses = []
    for _ in range(steps):
        x = torch.rand(2, 3, 16, 16, generator=data) * 2 - 1
        loss = (model(x) - x.flip(-1)).abs().mean()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        losses.append(loss.item())
    return losses


def optimizer_for(model, *overrides):
    return build_optimizer(model.parameters(), load_config(None, list(overrides)).optim)


@pytest.mark.parametrize("name", ["adam", "sgd"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_and_foreach_step_as_the_for_loop(name, channels_last):
    extra = ["optim.momentum=0.9"] if name == "sgd" else []
    runs = {}
    for impl in ("for-loop", "foreach", "fused"):
        model = net(channels_last)
        opt = optimizer_for(model, f"optim.name={name}", f"optim.implementation={impl}", "optim.lr=1e-2", *extra)
        assert opt.param_groups[0]["fused"] is (impl == "fused") and opt.param_groups[0]["foreach"] is (impl == "foreach")
        runs[impl] = (train(model, opt), model)
    plain_losses, plain = runs["for-loop"]
    moved = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), net(channels_last).parameters()))
    assert moved > 1e-3  # the steps changed the weights: the comparison below is not vacuous
    skip = norm_cancelled_biases(plain)  # moved by float noise (see conftest); judged by the outputs
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for impl in ("foreach", "fused"):
        losses, model = runs[impl]
        assert losses == pytest.approx(plain_losses, rel=1e-5, abs=1e-7), impl
        for (k, p), q in zip(model.named_parameters(), plain.parameters()):
            if k not in skip:
                torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=f"{impl}: {k}")
        with torch.no_grad():
            torch.testing.assert_close(model(probe), plain(probe), rtol=1e-4, atol=1e-5, msg=impl)


def test_auto_is_fused_on_the_cpu():
    opt = optimizer_for(net())
    assert opt.param_groups[0]["fused"] is True


def test_loading_a_checkpoint_keeps_this_runs_implementation_and_resumes_exactly():
    """torch's load_state_dict would take the saved groups' flags; the run's own choice is kept, and
    the resumed run steps as one that never stopped."""
    model = net()
    opt = optimizer_for(model, "optim.implementation=for-loop")
    train(model, opt, steps=2)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    straight = train(model, opt, steps=2, seed=2)

    resumed = net()
    resumed.load_state_dict(saved_model)
    fused = optimizer_for(resumed)
    fused.load_state_dict(saved_opt)
    assert fused.param_groups[0]["fused"] is True and fused.param_groups[0]["foreach"] is False
    assert train(resumed, fused, steps=2, seed=2) == pytest.approx(straight, rel=1e-5, abs=1e-7)
    skip = norm_cancelled_biases(model)
    for (k, p), q in zip(resumed.named_parameters(), model.parameters()):
        if k not in skip:
            torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6, msg=k)
