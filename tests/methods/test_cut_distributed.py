"""CUT and FastCUT under real 2-rank torchrun (gloo): a run restarted from a mid-run checkpoint (as
after a SIGKILL) ends bit-equal to an uninterrupted one; DeepSpeed ZeRO-2 matches DDP."""
from __future__ import annotations

import pytest
import torch
from conftest import assert_clean_exit, assert_same_weights, load_weights, restart_from, torchrun

pytestmark = pytest.mark.multiprocess

TINY_CUT = {"model": {"generator": {"name": "resnet", "ngf": 4, "n_blocks": 1, "antialias": True}},
            "data": {"workers": 1}}


def method(name: str) -> dict:
    return {"method": {"name": name, "nce_layers": [0, 4, 8, 12], "num_patches": 32}}


@pytest.mark.long
@pytest.mark.parametrize("name", ["cut", "fastcut"])
def test_resume_is_bit_equal_two_ranks(name, make_recipe, tmp_path):
    """6 steps straight == 3 steps, restart from that checkpoint, 3 more: weights (G, heads, D), lr
    schedules and each rank's random streams (patch and flip draws) are equal; CUT keeps no buffers."""
    recipes = {run: make_recipe({**TINY_CUT, **method(name), "train": {"run_dir": str(tmp_path / run), "ckpt_every": 3}},
                                name=f"{run}.yaml") for run in ("straight", "resumed")}
    assert_clean_exit(torchrun(2, str(recipes["straight"])))
    restart_from(tmp_path / "straight", tmp_path / "resumed", 3, recipes["resumed"])
    a, b = load_weights(tmp_path / "straight", 6), load_weights(tmp_path / "resumed", 6)
    assert any(k.startswith("G.heads.mlps.") for k in a)  # the projection heads are saved
    assert_same_weights(a, b)
    ckpt = "checkpoints/step_00000006"
    sa = torch.load(tmp_path / "straight" / ckpt / "train.pt", weights_only=True)
    sb = torch.load(tmp_path / "resumed" / ckpt / "train.pt", weights_only=True)
    assert sa["schedules"] == sb["schedules"]
    for rank in range(2):
        ra = torch.load(tmp_path / "straight" / ckpt / f"rank_{rank:05d}.pt", weights_only=True)
        rb = torch.load(tmp_path / "resumed" / ckpt / f"rank_{rank:05d}.pt", weights_only=True)
        assert ra["method"] == rb["method"] == {}
        assert torch.equal(ra["rng"]["torch"], rb["rng"]["torch"])


@pytest.mark.long
@pytest.mark.parametrize("name", ["cut", "fastcut"])
def test_zero2_matches_ddp(name, make_recipe, tmp_path):
    pytest.importorskip("deepspeed")
    sgd = {"optim": {"name": "sgd", "lr": 0.01}}
    ddp = make_recipe({**TINY_CUT, **method(name), **sgd, "train": {"run_dir": str(tmp_path / "ddp"), "steps": 2}},
                      name="ddp.yaml")
    ds = make_recipe({**TINY_CUT, **method(name), **sgd, "train": {"run_dir": str(tmp_path / "ds"), "steps": 2},
                      "distributed": {"strategy": "deepspeed", "zero_stage": 2}}, name="ds.yaml")
    assert_clean_exit(torchrun(2, str(ddp)))
    assert_clean_exit(torchrun(2, str(ds)))
    assert_same_weights(load_weights(tmp_path / "ds"), load_weights(tmp_path / "ddp"), atol=1e-5)
