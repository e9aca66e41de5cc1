"""Named network groups (method kind v2): per-group optimizer settings (``optim.<group>``) reach their groups,
TTUR and a D-update ratio (``optim.<group>.update_every``) resume exactly, a first-form method trains through
the adapter as before, a checkpoint of the previous format (format 1) loads for translate and resume, and a
third-party method with three groups trains from a recipe (``cgx.testing.check_method``)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import REPO, assert_same_run_state, assert_same_weights, load_weights

from cgx.config import load_config
from cgx.errors import ConfigError
from cgx.plugins import Registry
from cgx.train.checkpoint import list_checkpoints
from cgx.train.manifest import write_manifest
from cgx.train.trainer import Trainer

EXAMPLE = REPO / "plugins" / "examples" / "cgx-example-method" / "cgx_example_method.py"
TTUR = {"optim": {"discriminators": {"lr": 4e-4, "betas": [0.0, 0.99]}, "decay_steps": 4}}


def train(recipe: Path, *overrides: str, until: int | None = None) -> int:
    trainer = Trainer(load_config(recipe, list(overrides)), registry=Registry())
    try:
        trainer.fit(until=until)
        return trainer.step
    finally:
        trainer.close()


def test_each_group_gets_its_own_optimizer_settings(make_recipe):
    recipe = make_recipe({"optim": {"weight_decay": 1e-3, "discriminators": {"lr": 4e-4, "betas": [0.0, 0.99]},
                                    "generators": {"name": "sgd", "momentum": 0.9, "weight_decay": 0.0}}})
    trainer = Trainer(load_config(recipe), registry=Registry())
    try:
        g, d = (trainer.groups[n].optimizer for n in ("generators", "discriminators"))
        assert isinstance(g, torch.optim.SGD) and isinstance(d, torch.optim.Adam)
        pg, pd = g.param_groups[0], d.param_groups[0]
        assert (pg["lr"], pg["momentum"], pg["weight_decay"]) == (2e-4, 0.9, 0.0)
        assert (pd["lr"], pd["betas"], pd["weight_decay"]) == (4e-4, (0.0, 0.99), 1e-3)
        # each optimizer holds exactly its own group's parameters
        for name, group in trainer.groups.items():
            held = {id(p) for p in group.optimizer.param_groups[0]["params"]}
            assert held == {id(p) for p in group.module.parameters()}, name
    finally:
        trainer.close()


def test_an_optim_section_for_a_group_the_method_lacks_is_refused_naming_its_groups(make_recipe):
    with pytest.raises(ConfigError, match=r"optim\.segmenter: the method \(cyclegan\) has no network group "
                                          r"'segmenter'; its groups: generators, discriminators$"):
        Trainer(load_config(make_recipe(), ["optim.segmenter.lr=1e-3"]), registry=Registry())


@pytest.mark.parametrize("override, key", [("optim.discriminators.lr=0", "optim.discriminators.lr"),
                                           ("optim.discriminators.update_every=0", "optim.discriminators.update_every"),
                                           ("optim.discriminators.betas=[0.5]", "optim.discriminators.betas"),
                                           ("optim.discriminators.wd=1", "optim.discriminators.wd"),
                                           ("optim.2d.lr=1", "optim.2d")])
def test_a_bad_group_section_is_one_line_naming_the_key(override, key):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert key in str(e.value) and "\n" not in str(e.value)


def test_ttur_and_a_d_update_ratio_resume_exactly(make_recipe, tmp_path):
    """D at twice G's lr, updated every other step: 3 steps, stop, resume, 3 more == 6 straight, bit for bit."""
    changes = {**TTUR, "optim": {**TTUR["optim"], "discriminators": {**TTUR["optim"]["discriminators"],
                                                                   "update_every": 2}},
               "train": {"ckpt_every": 1, "keep": 10}, "logging": {"backends": ["jsonl"]}}
    straight = make_recipe({**changes, "train": {**changes["train"], "run_dir": str(tmp_path / "straight")}})
    resumed = make_recipe({**changes, "train": {**changes["train"], "run_dir": str(tmp_path / "resumed")}},
                          name="resumed.yaml")
    assert train(straight) == 6
    assert train(resumed, until=3) == 3 and train(resumed) == 6
    assert_same_run_state(tmp_path / "straight", tmp_path / "resumed", step=6)

    states = {int(p.name[5:]): torch.load(p / "train.pt", weights_only=True)
              for p in list_checkpoints(tmp_path / "straight" / "checkpoints")}
    d = {step: s["groups"]["discriminators"] for step, s in states.items()}
    # D updates at steps 0, 2, 4 (the 1st, 3rd, 5th): unchanged by the 2nd, 4th and 6th
    for step in (2, 4, 6):
        assert all(torch.equal(v, d[step - 1]["module"][k]) for k, v in d[step]["module"].items()), step
    assert any(not torch.equal(v, d[2]["module"][k]) for k, v in d[3]["module"].items())
    adam_steps = {int(s["step"]) for s in d[6]["optimizer"]["state"].values()}
    assert adam_steps == {3}  # three D updates in six steps; G's Adam took six
    assert {int(s["step"]) for s in states[6]["groups"]["generators"]["optimizer"]["state"].values()} == {6}
    # the schedules: each group's lr decays from its own value
    lrs = {n: states[3]["groups"][n]["optimizer"]["param_groups"][0]["lr"] for n in ("generators", "discriminators")}
    assert lrs == pytest.approx({"generators": 2e-4 * 3 / 4, "discriminators": 4e-4 * 3 / 4})
    logged = [json.loads(line) for line in (tmp_path / "straight" / "log.jsonl").read_text().splitlines()]
    lrs = [r["values"] for r in logged if r["kind"] == "scalars" and "lr/discriminators" in r["values"]]
    assert lrs and lrs[0]["lr/generators"] > 0 and lrs[0]["lr/discriminators"] == pytest.approx(2 * lrs[0]["lr/generators"])


V1_METHOD = '''
from cgx.plugins import hookimpl
from cgx_plugins.methods.cyclegan import CycleGAN, DiscriminatorPair, GeneratorPair


class FirstForm:
    """CycleGAN written in the first form of the method kind (two build calls)."""

    def __init__(self):
        self.v2 = CycleGAN()

    def build_generators(self, make):
        return GeneratorPair(make.generator("A", "B"), make.generator("B", "A"))

    def build_discriminators(self, make):
        return DiscriminatorPair(make.discriminator("A"), make.discriminator("B"))

    def build_step(self, generators, discriminators, make, autocast):
        return self.v2.build_step({"generators": generators, "discriminators": discriminators}, make, autocast)

    def translators(self, generators):
        return self.v2.translators(generators)


@hookimpl
def cgx_register_methods(register):
    register("firstform", FirstForm)
'''


def test_a_first_form_method_trains_as_the_two_groups_exactly(make_recipe, tmp_path):
    module = tmp_path / "firstform.py"
    module.write_text(V1_METHOD)
    v1 = make_recipe({"method": {"name": "firstform"}, "plugins": [str(module)], "train": {"steps": 2, "ckpt_every": 2,
                      "run_dir": str(tmp_path / "v1")}}, name="v1.yaml")
    v2 = make_recipe({"train": {"steps": 2, "ckpt_every": 2, "run_dir": str(tmp_path / "v2")}}, name="v2.yaml")
    assert train(v1) == 2 and train(v2) == 2
    assert_same_weights(load_weights(tmp_path / "v1"), load_weights(tmp_path / "v2"))


def write_format_1(ckpt: Path) -> None:
    """Rewrite a checkpoint's train.pt in the layout cgx wrote before named groups (format 1, main at
    2fbbce3): the two groups at the top, both schedules in one ``schedule`` entry; manifest renewed."""
    path = ckpt / "train.pt"
    state = torch.load(path, weights_only=True)
    groups, schedules = state.pop("groups"), state.pop("schedules")
    assert list(groups) == ["generators", "discriminators"]
    old = {"format": 1, **{k: v for k, v in state.items() if k != "format"}, **groups,
           "schedule": {"generators": schedules["generators"], "discriminators": schedules["discriminators"]}}
    torch.save(old, path)
    write_manifest(ckpt)


def test_a_previous_format_checkpoint_resumes_and_translates(make_recipe, tmp_path, demo_data, capfd):
    straight = make_recipe({"train": {"run_dir": str(tmp_path / "straight")}}, name="straight.yaml")
    old = make_recipe({"train": {"run_dir": str(tmp_path / "old")}}, name="old.yaml")
    assert train(straight) == 6 and train(old, until=3) == 3
    ckpt = tmp_path / "old" / "checkpoints" / "step_00000003"
    write_format_1(ckpt)
    assert set(torch.load(ckpt / "train.pt", weights_only=True)) >= {"generators", "discriminators", "schedule"}
    capfd.readouterr()

    from cgx.cli import main as cli_main

    out = tmp_path / "translated"
    assert cli_main(["translate", str(ckpt), str(demo_data / "testA"), str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.png"))) == 2
    said = capfd.readouterr().err
    assert said.count("checkpoint format 1 read as format 2") == 1, said
    assert "generators and discriminators as the network groups of those names, its schedule as one per group" in said

    assert train(old) == 6  # resumes from the converted checkpoint
    assert capfd.readouterr().err.count("checkpoint format 1 read as format 2") == 1
    assert_same_run_state(tmp_path / "straight", tmp_path / "old", step=6)


@pytest.mark.slow
def test_a_third_party_three_group_method_keeps_the_contract(tmp_path):
    """The example plugin's blurcycle (generators, discriminators, classifier), loaded from its file as a recipe's
    ``plugins:`` loads it, with its own classifier lr: trains, every group moves, resumes exactly, translates."""
    from cgx.testing import check_method

    run = check_method({"name": "blurcycle", "blur": 3, "aux_weight": 0.5}, tmp_path, plugins=[EXAMPLE],
                       recipe={"optim": {"classifier": {"lr": 1e-3, "betas": [0.9, 0.999]}}})
    state = torch.load(run / "checkpoints" / "step_00000004" / "train.pt", weights_only=True)
    assert list(state["groups"]) == ["generators", "discriminators", "classifier"]
    assert list(state["schedules"]) == ["generators", "discriminators", "classifier"]
    assert state["groups"]["classifier"]["optimizer"]["param_groups"][0]["betas"] == (0.9, 0.999)
    assert state["groups"]["generators"]["optimizer"]["param_groups"][0]["betas"] == (0.5, 0.999)
