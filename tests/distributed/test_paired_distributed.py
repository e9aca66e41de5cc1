"""pix2pix on paired shards with 2 real torchrun ranks: a run killed (SIGKILL) and restarted ends bit-equal
to an uninterrupted one; DeepSpeed (ZeRO 0 and 2) matches DDP."""
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


@pytest.fixture(scope="module")
def paired_shards(paired_data, tmp_path_factory):
    from cgx.data.paired_writer import write_paired_shards

    out = tmp_path_factory.mktemp("paired_shards")
    write_paired_shards(paired_data, out, max_count=3, progress=False)  # train-{000000..000002}.tar: 3+3+2
    return out


def shard_recipe(paired_shards, **train):
    return {"data": {"source": "shards", "shards": str(paired_shards / "train-{000000..000002}.tar"),
                     "shuffle_buffer": 4, "workers": 1},
            "train": {"steps": 6, "ckpt_every": 2, "keep": 5, "image_every": 0, **train}}


def assert_same_state(run_a, run_b, step):
    assert_same_weights(load_weights(run_a, step), load_weights(run_b, step))
    name = f"checkpoints/step_{step:08d}/train.pt"
    a, b = (torch.load(r / name, weights_only=True) for r in (run_a, run_b))
    assert a["schedules"] == b["schedules"]


@pytest.mark.long
def test_paired_training_resumes_bit_equal_after_sigkill(make_paired_recipe, paired_shards, tmp_path):
    straight = make_paired_recipe(shard_recipe(paired_shards, run_dir=str(tmp_path / "straight")), name="straight.yaml")
    assert_clean_exit(torchrun(2, str(straight)))
    killed = make_paired_recipe(shard_recipe(paired_shards, run_dir=str(tmp_path / "killed")), name="killed.yaml")
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
    assert_same_state(tmp_path / "straight", tmp_path / "killed", 6)


SGD = {"optim": {"name": "sgd", "lr": 0.01}}


@pytest.mark.long
@pytest.mark.parametrize("stage", [0, 2])
def test_deepspeed_matches_ddp(stage, make_paired_recipe, paired_shards, tmp_path):
    pytest.importorskip("deepspeed")
    ddp = make_paired_recipe({**SGD, **shard_recipe(paired_shards, steps=2, run_dir=str(tmp_path / "ddp"))},
                             name="ddp.yaml")
    ds = make_paired_recipe({**SGD, **shard_recipe(paired_shards, steps=2, run_dir=str(tmp_path / "ds")),
                             "distributed": {"strategy": "deepspeed", "zero_stage": stage}}, name="ds.yaml")
    assert_clean_exit(torchrun(2, str(ddp)))
    assert_clean_exit(torchrun(2, str(ds)))
    assert_same_weights(load_weights(tmp_path / "ds"), load_weights(tmp_path / "ddp"), atol=1e-5)
