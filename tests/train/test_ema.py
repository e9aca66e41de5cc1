"""train.ema: the moving average of the generator weights, kept, resumed exactly, and used by
inference (issue 23 part 3)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

from cgx.cli import main as cli_main
from cgx.infer import load_generators
from cgx.run import main as run_main
from cgx.train.ema import EMA

EMA_RUN = {"train": {"ema": 0.5, "steps": 4, "ckpt_every": 2, "image_every": 0}}


def test_the_average_is_the_closed_form_and_counters_are_copied():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2))
    ema = EMA(net, 0.9)
    expected = {k: v.detach().float().clone() for k, v in net.state_dict().items() if v.is_floating_point()}
    for i in range(3):
        with torch.no_grad():
            for p in net.parameters():
                p.add_(float(i + 1))
        net[1].num_batches_tracked += 1
        ema.update(net)
        for k, v in net.state_dict().items():
            if v.is_floating_point():
                expected[k] = 0.9 * expected[k] + 0.1 * v.float()
    for k, v in expected.items():
        torch.testing.assert_close(ema.shadow[k], v, rtol=1e-6, atol=1e-6)
    assert ema.shadow["1.num_batches_tracked"].item() == 3
    with pytest.raises(ValueError, match="train.ema must be in"):
        EMA(net, 1.0)


def ema_of(run: Path, step: int) -> dict:
    state = torch.load(run / "checkpoints" / f"step_{step:08d}" / "train.pt", weights_only=True)
    return state["ema"]["weights"]


def test_a_run_keeps_its_average_resumes_it_exactly_and_inference_uses_it(make_recipe, tmp_path, demo_data, capsys):
    straight = make_recipe({**EMA_RUN, "train": {**EMA_RUN["train"], "run_dir": str(tmp_path / "straight")}}, "a.yaml")
    assert run_main([str(straight)]) == 0
    resumed = make_recipe({**EMA_RUN, "train": {**EMA_RUN["train"], "run_dir": str(tmp_path / "resumed")}}, "b.yaml")
    step2 = "checkpoints/step_00000002"  # as if the straight run had been killed right after it
    shutil.copytree(tmp_path / "straight" / step2, tmp_path / "resumed" / step2)
    assert run_main([str(resumed)]) == 0
    a, b = ema_of(tmp_path / "straight", 4), ema_of(tmp_path / "resumed", 4)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    raw = torch.load(tmp_path / "straight" / "checkpoints" / "step_00000004" / "train.pt",
                     weights_only=True)["groups"]["generators"]["module"]
    assert any(not torch.equal(a[k], raw[k].float()) for k in a)  # an average, not a copy

    run = tmp_path / "straight"
    gens = {w: load_generators(run, weights=w) for w in ("auto", "ema", "raw")}
    assert (gens["auto"].weights, gens["ema"].weights, gens["raw"].weights) == ("ema", "ema", "raw")
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.equal(gens["auto"].G(x), gens["ema"].G(x))
        assert not torch.equal(gens["ema"].G(x), gens["raw"].G(x))

    out = tmp_path / "out"
    assert cli_main(["translate", str(run), str(demo_data / "testA"), str(out), "--weights", "raw", "--no-progress"]) == 0
    plain = make_recipe({"train": {"steps": 2, "ckpt_every": 2, "image_every": 0, "run_dir": str(tmp_path / "plain")}},
                        "c.yaml")
    assert run_main([str(plain)]) == 0
    capsys.readouterr()
    assert cli_main(["translate", str(tmp_path / "plain"), str(demo_data / "testA"), str(tmp_path / "o2"),
                     "--weights", "ema"]) == 2
    err = capsys.readouterr().err.strip()
    assert "train.ema was not set" in err and "\n" not in err
