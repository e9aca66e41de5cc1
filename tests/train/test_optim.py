"""The optimizer implementations (optim.implementation) step the same: fused, foreach and the
for-loop agree to float rounding over a few steps, on channels_last weights too; auto picks fused
where torch has it; a checkpoint keeps the loading run's choice.

Every implementation is fed the same gradients (recorded once from a real training run), so the
comparisons measure the optimizers alone: two forward/backward runs may sum a convolution's
gradient in a different order (threads, the CPU's instruction set), and Adam turns the noise in a
zero true gradient (a bias before instance norm) into a full-sized step."""
from __future__ import annotations

import copy

import pytest
import torch

from cgx import plugins
from cgx.config import load_config
from cgx.train.optim import build_optimizer

STEPS = 4
# Tolerances for two optimizer implementations given identical gradients: each computes the same
# formula in its own order (fused: one kernel; foreach: batched ops), a few float32 roundings apart
# per step (~1e-7 relative); over STEPS steps at lr 1e-2 the weights stay within ~1e-6 relative,
# and a weight near 0 within a few roundings of the step size (lr * 1e-7 * STEPS ~ 1e-8; 1e-7 leaves
# room). A wrong formula or lost state moves a weight by a good part of lr (1e-2): far outside.
RTOL, ATOL = 1e-6, 1e-7


def net(channels_last: bool = False) -> torch.nn.Module:
    torch.manual_seed(0)
    G = plugins.create("generator", "resnet", ngf=4, n_blocks=1)
    return G.to(memory_format=torch.channels_last) if channels_last else G


def train(model, optimizer, steps: int = STEPS, seed: int = 1) -> list[list[torch.Tensor]]:
    """A real training run; returns each step's gradients (copies, in the parameters' memory format)."""
    data = torch.Generator().manual_seed(seed)
    grads = []
    for _ in range(steps):
        x = torch.rand(2, 3, 16, 16, generator=data) * 2 - 1
        (model(x) - x.flip(-1)).abs().mean().backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return grads


def replay(model, optimizer, grads: list[list[torch.Tensor]]) -> None:
    """Step ``optimizer`` with recorded gradients instead of a forward/backward of its own."""
    for step in grads:
        for p, g in zip(model.parameters(), step):
            p.grad = g.clone()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def assert_same_parameters(model, plain, msg: str) -> None:
    for (k, p), q in zip(model.named_parameters(), plain.parameters()):
        torch.testing.assert_close(p, q, rtol=RTOL, atol=ATOL, msg=lambda m: f"{msg}: {k}: {m}")


def optimizer_for(model, *overrides):
    return build_optimizer(model.parameters(), load_config(None, list(overrides)).optim)


@pytest.mark.parametrize("name", ["adam", "sgd"])
@pytest.mark.parametrize("channels_last", [False, True])
def test_fused_and_foreach_step_as_the_for_loop(name, channels_last):
    settings = [f"optim.name={name}", "optim.lr=1e-2", *(["optim.momentum=0.9"] if name == "sgd" else [])]
    recorder = net(channels_last)
    grads = train(recorder, optimizer_for(recorder, *settings, "optim.implementation=for-loop"))
    models = {}
    for impl in ("for-loop", "foreach", "fused"):
        model = net(channels_last)
        opt = optimizer_for(model, *settings, f"optim.implementation={impl}")
        assert opt.param_groups[0]["fused"] is (impl == "fused") and opt.param_groups[0]["foreach"] is (impl == "foreach")
        replay(model, opt, grads)
        models[impl] = model
    plain = models["for-loop"]
    moved = max((p - q).abs().max().item() for p, q in zip(plain.parameters(), net(channels_last).parameters()))
    assert moved > 1e-3  # the steps changed the weights: the comparison below is not vacuous
    assert_same_parameters(recorder, plain, "for-loop replayed")  # the replay steps as training did
    probe = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(3)) * 2 - 1
    for impl in ("foreach", "fused"):
        assert_same_parameters(models[impl], plain, impl)
        with torch.no_grad():  # the same network on the same input, weights a few roundings apart
            torch.testing.assert_close(models[impl](probe), plain(probe), rtol=1e-5, atol=1e-6, msg=impl)


def test_auto_is_fused_on_the_cpu():
    opt = optimizer_for(net())
    assert opt.param_groups[0]["fused"] is True


def test_loading_a_checkpoint_keeps_this_runs_implementation_and_resumes_exactly():
    """torch's load_state_dict would take the saved groups' flags; the run's own choice is kept, and
    the resumed run steps as one that never stopped (given the same gradients: see the top)."""
    model = net()
    opt = optimizer_for(model, "optim.implementation=for-loop")
    train(model, opt, steps=2)
    saved_model, saved_opt = copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict())
    later = train(model, opt, steps=2, seed=2)

    resumed = net()
    resumed.load_state_dict(saved_model)
    fused = optimizer_for(resumed)
    fused.load_state_dict(saved_opt)
    assert fused.param_groups[0]["fused"] is True and fused.param_groups[0]["foreach"] is False
    replay(resumed, fused, later)
    assert_same_parameters(resumed, model, "resumed")
    fresh = net()  # without the saved moments and step count the same gradients step elsewhere
    fresh.load_state_dict(saved_model)
    replay(fresh, optimizer_for(fresh), later)
    assert any(not torch.allclose(p, q, rtol=RTOL, atol=ATOL) for p, q in zip(fresh.parameters(), model.parameters()))
