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

# Tiny instance-normed nets amplify float noise ~30x a step (tests/distributed/test_ddp.py); a compiled
# network's fused kernels round differently from eager ones, so after a few steps the weights differ by
# float noise, while a wrong gradient moves them by ~lr = 2e-4 a step.
NOISE = 5e-5


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
        return make_recipe({"train": {"run_dir": str(tmp_path / name), "steps": 8, "ckpt_every": 3,
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

    # Compiled steps equal eager ones, up to float noise.
    eager = recipes("eager", False)
    fit(eager)
    assert_same_weights(load_weights(tmp_path / "eager", 3), load_weights(tmp_path / "compiled", 3), atol=NOISE)

    # Checkpoints hold the networks' own names (no _orig_mod.): the same keys as an eager run's.
    assert load_weights(tmp_path / "compiled").keys() == load_weights(tmp_path / "eager").keys()

    # A compiled run stopped at step 3 and resumed is the uninterrupted one, bit for bit: the same
    # kernels on the same inputs (CPU inductor kernels are deterministic for a fixed thread count).
    resumed = recipes("resumed", True)
    shutil.copytree(tmp_path / "compiled/checkpoints/step_00000003", tmp_path / "resumed/checkpoints/step_00000003")
    r = fit(resumed)
    assert r.resumed_from is not None and r.step == 8
    assert_same_run_state(tmp_path / "compiled", tmp_path / "resumed", step=8)

    # The compiled run's checkpoint resumes eagerly, and the eager one compiled: each lands within
    # float noise of the uninterrupted run.
    for name, source, compile_on in (("eager_from_compiled", "compiled", False), ("compiled_from_eager", "eager", True)):
        recipe = recipes(name, compile_on)
        shutil.copytree(tmp_path / source / "checkpoints/step_00000003", tmp_path / name / "checkpoints/step_00000003")
        assert fit(recipe).resumed_from is not None
        assert_same_weights(load_weights(tmp_path / "compiled", 8), load_weights(tmp_path / name, 8), atol=NOISE)
