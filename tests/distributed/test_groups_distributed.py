"""A method with three network groups (the example plugin's blurcycle: generators, discriminators, classifier)
under 2 real torchrun ranks (gloo, CPU): a run killed with SIGKILL and restarted ends bit-equal to an
uninterrupted one, every group, optimizer and schedule; DeepSpeed ZeRO-2 matches DDP."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from conftest import REPO, assert_clean_exit, assert_same_weights, load_weights, torchrun

from cgx.train.checkpoint import list_checkpoints

pytestmark = pytest.mark.multiprocess

EXAMPLE = REPO / "plugins" / "examples" / "cgx-example-method" / "cgx_example_method.py"
THREE_GROUPS = {"method": {"name": "blurcycle", "blur": 3, "aux_weight": 0.5}, "plugins": [str(EXAMPLE)],
                "optim": {"classifier": {"lr": 1e-3}, "discriminators": {"lr": 4e-4}}}


def test_three_groups_resume_bit_equal_after_sigkill(make_recipe, tmp_path):
    straight = make_recipe({**THREE_GROUPS, "train": {"run_dir": str(tmp_path / "straight"), "ckpt_every": 2}},
                           name="straight.yaml")
    killed = make_recipe({**THREE_GROUPS, "train": {"run_dir": str(tmp_path / "killed"), "ckpt_every": 2}},
                         name="killed.yaml")
    assert_clean_exit(torchrun(2, str(straight)))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cgx.run",
           str(killed)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 180
    while proc.poll() is None and time.time() < deadline and not list_checkpoints(tmp_path / "killed/checkpoints"):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both ranks, mid-run
    proc.wait()
    done = list_checkpoints(tmp_path / "killed/checkpoints")
    assert done
    for later in done[1:]:  # however far it got, restart from its first checkpoint (step 2)
        shutil.rmtree(later)
    again = torchrun(2, str(killed))
    assert_clean_exit(again)
    assert "resumed from" in again.stdout + again.stderr

    a, b = load_weights(tmp_path / "straight", 6), load_weights(tmp_path / "killed", 6)
    assert any(k.startswith("classifier.") for k in a)
    assert_same_weights(a, b)
    name = "checkpoints/step_00000006/train.pt"
    sa, sb = (torch.load(r / name, weights_only=True) for r in (tmp_path / "straight", tmp_path / "killed"))
    assert sa["schedules"] == sb["schedules"] and list(sa["schedules"]) == ["generators", "discriminators", "classifier"]
    for group in sa["groups"]:
        for key, state in sa["groups"][group]["optimizer"]["state"].items():
            other = sb["groups"][group]["optimizer"]["state"][key]
            assert all(torch.equal(v, other[k]) for k, v in state.items()), (group, key)
    for rank in range(2):
        ra, rb = (torch.load(r / f"checkpoints/step_00000006/rank_{rank:05d}.pt", weights_only=True)
                  for r in (tmp_path / "straight", tmp_path / "killed"))
        assert torch.equal(ra["rng"]["torch"], rb["rng"]["torch"])


@pytest.mark.long
def test_three_groups_zero2_matches_ddp(make_recipe, tmp_path):
    pytest.importorskip("deepspeed")
    sgd = {"optim": {"name": "sgd", "lr": 0.01, "classifier": {"lr": 0.05}}}
    ddp = make_recipe({**THREE_GROUPS, **sgd, "train": {"steps": 2, "run_dir": str(tmp_path / "ddp")}}, name="ddp.yaml")
    ds = make_recipe({**THREE_GROUPS, **sgd, "train": {"steps": 2, "run_dir": str(tmp_path / "ds")},
                      "distributed": {"strategy": "deepspeed", "zero_stage": 2}}, name="ds.yaml")
    assert_clean_exit(torchrun(2, str(ddp)))
    assert_clean_exit(torchrun(2, str(ds)))
    a, b = load_weights(tmp_path / "ddp"), load_weights(tmp_path / "ds")
    assert any(k.startswith("classifier.") for k in a)
    assert_same_weights(b, a, atol=1e-5)
    ckpt = tmp_path / "ds/checkpoints/step_00000002"
    for group in ("generators", "discriminators", "classifier"):  # DeepSpeed's own checkpoint per group, by name
        assert len(list((ckpt / group).glob("zero_pp_rank_*_optim_states.pt"))) == 2, group
