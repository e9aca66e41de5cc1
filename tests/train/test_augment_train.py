"""Discriminator augmentation in real training steps: off is the plain step, on reaches every discriminator
call of every method (CycleGAN, CUT), checkpoints keep the networks' keys, and ADA resumes exactly."""
from __future__ import annotations

import importlib

import pytest
import torch
from conftest import assert_same_run_state, assert_same_weights, load_weights

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.augment import ObservedLoss, augmented
from cgx.train.trainer import Trainer

from log_readers import read_jsonl

# Named here as well as installed as entry points: a checkout whose metadata predates them still loads them.
PLUGINS = ["cgx_plugins.augments.diffaugment", "cgx_plugins.augments.ada"]
diffaugment = importlib.import_module("cgx_plugins.augments.diffaugment")


def trainer_for(recipe, *overrides) -> Trainer:
    return Trainer(load_config(recipe, list(overrides)), registry=Registry())


def train(recipe, *overrides, until=None):
    trainer = trainer_for(recipe, *overrides)
    try:
        trainer.fit(until=until)
    finally:
        trainer.close()
    return trainer.step


def discriminators(trainer):
    return [m for m in trainer.discs.module.modules() if augmented(m)]


def test_augment_off_installs_nothing_and_an_empty_policy_is_bit_equal(make_recipe, tmp_path):
    """augment: none (the default) leaves the step as it was (tests/train/test_reference.py holds that step to
    the paper's algorithm); the machinery itself (hooks, shared augmentation) changes nothing: an empty policy
    gives bit-equal weights, and the full one does not."""
    runs = {}
    for name, section in (("off", "none"), ("empty", {"name": "diffaugment", "policy": []}),
                          ("on", {"name": "diffaugment"})):
        run = tmp_path / name
        trainer = trainer_for(make_recipe({"plugins": PLUGINS, "augment": section, "logging": {"backends": []},
                                           "train": {"steps": 2, "ckpt_every": 2, "run_dir": str(run)}},
                                          name=f"{name}.yaml"))
        try:
            if name == "off":
                assert discriminators(trainer) == [] and not isinstance(trainer.method_step.obj.gan, ObservedLoss)
                assert trainer.augment is None and "augment" not in trainer.store.shared
            else:
                assert len(discriminators(trainer)) == 2
            trainer.fit()
        finally:
            trainer.close()
        runs[name] = load_weights(run)
    assert_same_weights(runs["off"], runs["empty"])  # the same keys too: checkpoints load either way
    assert runs["on"].keys() == runs["off"].keys()
    with pytest.raises(AssertionError, match="weights differ"):
        assert_same_weights(runs["off"], runs["on"])


@pytest.mark.parametrize("method,calls_per_step", [({"name": "cyclegan"}, 4),
                                                    ({"name": "cut", "nce_layers": [0, 4, 8], "num_patches": 16}, 2)],
                         ids=["cyclegan", "cut"])
def test_every_discriminator_call_of_every_method_is_augmented(make_recipe, monkeypatch, method, calls_per_step):
    """CycleGAN: D_A and D_B in the generator phase and in the discriminator phase (4 calls a step); CUT: D_B in
    each phase (2); every real and fake of each call goes through the augmentation, with gradient."""
    seen = []
    original = diffaugment.DiffAugment.__call__

    def spy(self, images):
        out = original(self, images)
        seen.append((images.shape[0], images.requires_grad, out.requires_grad))
        return out

    monkeypatch.setattr(diffaugment.DiffAugment, "__call__", spy)
    recipe = make_recipe({"plugins": PLUGINS, "method": method, "augment": "diffaugment",
                          "logging": {"backends": []}, "train": {"steps": 1, "ckpt_every": 1}})
    trainer = trainer_for(recipe)
    try:
        assert len(discriminators(trainer)) == (2 if method["name"] == "cyclegan" else 1)
        trainer.fit()
        assert trainer.step == 1
    finally:
        trainer.close()
    assert len(seen) == calls_per_step
    assert any(grad for _, grad, _ in seen)  # the generator phase's fakes carry the generator's gradient
    assert all(out == grad for _, grad, out in seen)
    assert {n for n, _, _ in seen} <= {1, 2}  # fakes alone (1) or real and fake in one call (2)


def test_ada_steers_p_logs_it_and_resumes_exactly(make_recipe, tmp_path):
    """ADA (target -1: every adjustment raises p, by 1/20 per image; one every 3 images) straight for 4 steps
    equals 2 steps, stop (mid-interval), resume, 2 more: weights, pools, p and the interval's statistics, and
    the random draws of the augmentation (rank state); p is logged."""
    ada = {"name": "ada", "target": -1.0, "interval": 3, "speed": 20, "initial_p": 0.5}
    changes = {"plugins": PLUGINS, "augment": ada, "logging": {"backends": ["jsonl"]}}
    straight = make_recipe({**changes, "train": {"steps": 4, "ckpt_every": 2, "run_dir": str(tmp_path / "straight")}})
    resumed = make_recipe({**changes, "train": {"steps": 4, "ckpt_every": 2, "run_dir": str(tmp_path / "resumed")}},
                          name="resumed.yaml")
    assert train(straight) == 4
    assert train(resumed, until=2) == 2
    assert train(resumed) == 4
    assert_same_run_state(tmp_path / "straight", tmp_path / "resumed", step=4)
    states = [torch.load(tmp_path / run / "checkpoints/step_00000004/train.pt", weights_only=True)["augment"]
              for run in ("straight", "resumed")]
    assert states[0].keys() == states[1].keys()
    assert all(torch.equal(torch.as_tensor(states[0][k]), torch.as_tensor(states[1][k])) for k in states[0])
    assert states[0]["p"].item() == pytest.approx(0.65)  # one adjustment (step 3) of 3 images / 20
    mid = torch.load(tmp_path / "straight/checkpoints/step_00000002/train.pt", weights_only=True)["augment"]
    assert mid["images"] == 2 and mid["pending"].tolist() == [0.0, 0.0] and mid["interval_stats"][1] > 0
    log = read_jsonl(tmp_path / "straight")
    assert log["scalars"]["augment/p"] == [2, 4]
