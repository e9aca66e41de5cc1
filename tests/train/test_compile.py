"""train.compile in real training: compiled steps equal eager ones (float tolerance), no compilation
after the first step (across checkpoints and the image pool filling up), exact resume of a compiled
run, and checkpoints that move between compiled and eager runs. Slow: inductor compiles tiny networks
in seconds each, starting g++ (so: multiprocess)."""
from __future__ import annotations

import shutil

import pytest
import torch
from conftest import assert_same_run_state, assert_same_weights, load_weights

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.speed import compiled_graphs
from cgx.train.trainer import Trainer

pytestmark = [pytest.mark.slow, pytest.mark.multiprocess]  # inductor starts g++

# A compiled network's fused kernels round differently from eager ones. SGD, as in tests/distributed:
# Adam moves a weight whose gradient is float noise (the conv biases before instance norm) by ~lr
# whatever the noise; a wrong gradient moves weights by ~lr * grad = 1e-3.
NOISE = 1e-5


def trainer(recipe, *overrides) -> Trainer:
    return Trainer(load_config(recipe, list(overrides)), registry=Registry())


def fit(recipe, *overrides, until=None) -> Trainer:
    t = trainer(recipe, *overrides)
    try:
        t.fit(until)
    finally:
        t.close()
    return t


@pytest.fixture
def recipes(make_recipe, tmp_path):
    torch._dynamo.reset()  # each test compiles from nothing (and within torch's cache limits)

    def make(name: str, compiled: bool, **train):
        return make_recipe({"optim": {"name": "sgd", "lr": 0.01},
                            "train": {"run_dir": str(tmp_path / name), "steps": 8, "ckpt_every": 3,
                                      "compile": compiled, **train}}, name=f"{name}.yaml")
    return make


def test_compiled_run_trains_resumes_exactly_and_swaps_checkpoints_with_eager(recipes, tmp_path, capsys):
    # A compiled run: the first step compiles, the rest of the run (checkpoints at 3 and 6, the pool of
    # 4 images full from step 5 on, swapping at random) compiles nothing more.
    compiled = recipes("compiled", True)
    t = trainer(compiled)
    try:
        assert t.speed.compile
        t.fit(until=1)
        graphs = compiled_graphs()
        assert graphs > 0
        with torch._dynamo.config.patch(error_on_recompile=True):
            t.fit()
        assert t.step == 8 and compiled_graphs() == graphs
    finally:
        t.close()
    assert "cgx: compiled in" in capsys.readouterr().out

    # Checkpoints hold the networks' own names (no _orig_mod.): the same keys as an eager run's.
    eager = recipes("eager", False)
    fit(eager)
    assert load_weights(tmp_path / "compiled").keys() == load_weights(tmp_path / "eager").keys()

    # A compiled run stopped at step 3 and resumed is the uninterrupted one, bit for bit: the same
    # kernels on the same inputs (CPU inductor kernels are deterministic for a fixed thread count).
    resumed = recipes("resumed", True)
    shutil.copytree(tmp_path / "compiled/checkpoints/step_00000003", tmp_path / "resumed/checkpoints/step_00000003")
    r = fit(resumed)
    assert r.resumed_from is not None and r.step == 8
    assert_same_run_state(tmp_path / "compiled", tmp_path / "resumed", step=8)

    # The compiled run's checkpoint resumes eagerly, and the eager one compiled: every weight loaded
    # as saved, and the run trains on to its end.
    for name, source, compile_on in (("eager_from_compiled", "compiled", False), ("compiled_from_eager", "eager", True)):
        shutil.copytree(tmp_path / source / "checkpoints/step_00000003", tmp_path / name / "checkpoints/step_00000003")
        t = trainer(recipes(name, compile_on))
        try:
            assert t.resumed_from is not None and t.step == 3 and t.speed.compile == compile_on
            loaded = {**{f"G.{k}": v for k, v in t.gens.module.state_dict().items()},
                      **{f"D.{k}": v for k, v in t.groups["discriminators"].module.state_dict().items()}}
            assert_same_weights(loaded, load_weights(tmp_path / source, 3))
            t.fit()
            assert t.step == 8
        finally:
            t.close()


def test_compiled_steps_equal_eager_steps():
    """The trainer's step (``wire_step``) compiled and eager from the same initial weights, on the same
    random images, 3 steps with SGD: the weights agree to float noise (measured: 3e-7). On the demo's
    flat-coloured images, the instance norms of these tiny nets amplify the rounding differences of
    fused kernels much faster (1e-3 by step 3), so the comparison uses noise images."""
    from cgx import plugins
    from cgx.distributed import WorldInfo, build_strategy
    from cgx.train.wiring import wire_step

    torch._dynamo.reset()
    overrides = ["model.generator.ngf=4", "model.generator.n_blocks=1", "model.discriminator.ndf=4",
                 "model.discriminator.n_layers=2", "buffer.size=2", "train.precision=fp32", "optim.name=sgd",
                 "optim.lr=0.01"]
    wired = {}
    for compiled in (False, True):
        cfg = load_config(None, [*overrides, f"train.compile={str(compiled).lower()}"])
        wired[compiled] = wire_step(cfg, plugins.default_registry(), build_strategy(cfg.distributed, cfg.train, WorldInfo()))
    torch.manual_seed(1)
    for _ in range(3):
        a, b = (torch.rand(1, 3, 32, 32) * 2 - 1 for _ in range(2))
        for compiled in (False, True):
            wired[compiled].step(a, b)
    for group in ("generators", "discriminators"):
        eager, compiled = (wired[c].groups[group].module.state_dict() for c in (False, True))
        assert_same_weights(eager, compiled, atol=NOISE)
