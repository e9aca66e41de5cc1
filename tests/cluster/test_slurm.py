"""cluster/slurm/train.sbatch on a real SLURM (two emulated nodes on this host).

Skipped where SLURM is not installed, unless CGX_REQUIRE_SLURM=1 (set by .ci/run, which installs
it), in which case a missing SLURM fails the suite."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_RECIPE, assert_same_weights, load_weights, merge

sys.path.insert(0, str(REPO / "cluster" / "test"))
from local_slurm import LocalSlurm, available  # noqa: E402

pytestmark = pytest.mark.multiprocess
SBATCH = REPO / "cluster" / "slurm" / "train.sbatch"
STEPS = 40

why = available()
if why and os.environ.get("CGX_REQUIRE_SLURM") != "1":
    pytest.skip(f"no local SLURM: {why}", allow_module_level=True)


@pytest.fixture(scope="module")
def slurm(tmp_path_factory):
    with LocalSlurm(tmp_path_factory.mktemp("slurm")) as s:
        yield s
    listed = subprocess.run(["pgrep", "-af", "slurmctld|slurmd|slurmstepd"], capture_output=True, text=True).stdout
    # a zombie (exited, not yet reaped by a container's init) runs nothing
    leftover = "".join(line + "\n" for line in listed.splitlines() if not line.endswith("<defunct>"))
    assert not leftover, f"SLURM processes left running: {leftover}"


@pytest.fixture(scope="module")
def recipe(tmp_path_factory, demo_data) -> Path:
    path = tmp_path_factory.mktemp("recipe") / "tiny.yaml"
    path.write_text(yaml.safe_dump(merge(TINY_RECIPE, {
        "data": {"root": str(demo_data)}, "train": {"steps": STEPS, "ckpt_every": 10, "log_every": 5}})))
    return path


def submit(slurm, recipe, run_dir: Path, port: int, restarts: int = 0, nodes: int = 2, procs: int | None = None) -> str:
    """World size 2 (unless ``procs`` per node says otherwise): two nodes x one process, or one node x two."""
    procs = 2 // nodes if procs is None else procs
    env = {"CGX_PROCS_PER_NODE": str(procs), "CGX_RUN_DIR": str(run_dir), "CGX_PORT": str(port),
           "CGX_MAX_RESTARTS": str(restarts),
           "CGX_ACTIVATE": f"export PATH={Path(sys.executable).parent}:$PATH OMP_NUM_THREADS=1"}
    return slurm.sbatch([f"--nodes={nodes}", f"--output={run_dir.parent}/{run_dir.name}-%j.out", str(SBATCH),
                         str(recipe)], env=env, cwd=REPO)


def output(run_dir: Path, job: str) -> str:
    return (run_dir.parent / f"{run_dir.name}-{job}.out").read_text()


def wait_for(predicate, timeout=180, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture(scope="module")
def reference(slurm, recipe, tmp_path_factory) -> Path:
    """An uninterrupted 2-node run: also the first check."""
    run = tmp_path_factory.mktemp("ref") / "run"
    job = submit(slurm, recipe, run, 29611)
    slurm.wait(job, timeout=300)
    return run, job


def test_two_node_job_trains_with_both_ranks(reference):
    run, job = reference
    log = output(run, job)
    assert "on 2 node(s) x 1 process(es)" in log and "world size 2 (ddp" in log
    final = run / f"checkpoints/step_{STEPS:08d}"
    assert (final / "rank_00000.pt").is_file() and (final / "rank_00001.pt").is_file()


@pytest.mark.long
def test_usr1_checkpoints_requeues_and_resumes_to_the_same_weights(slurm, recipe, reference, tmp_path):
    run = tmp_path / "run"
    job = submit(slurm, recipe, run, 29612)
    # config.yaml is written as training starts: the signal then lands well before the last of the 40 tiny steps
    wait_for(lambda: (run / "config.yaml").exists(), what="training to start")
    slurm.run(["scancel", "--signal=USR1", "--batch", job])
    info = slurm.wait(job, timeout=300)
    assert info["Restarts"] == "1"
    log = output(run, job)
    assert "USR1 received" in log and "requeueing job" in log
    assert "stopped at step" in log and "on request (stop file" in log
    assert "restart 1" in log and "resumed from" in log and f"trained {STEPS} steps" in log
    assert log.index("requeueing job") < log.index("resumed from")  # one output file, appended
    assert_same_weights(load_weights(reference[0]), load_weights(run))


@pytest.mark.long
def test_a_killed_rank_is_restarted_and_resumes(slurm, recipe, reference, tmp_path):
    """One node x 2 processes under torchrun --max-restarts=1: SIGKILL one worker mid-run."""
    run = tmp_path / "run"
    job = submit(slurm, recipe, run, 29613, restarts=1, nodes=1)
    wait_for(lambda: (run / "checkpoints/step_00000010").is_dir(), what="the first checkpoint")
    workers = subprocess.run(["pgrep", "-f", "--", f"-u -m cgx.run .*train.run_dir={run}"], capture_output=True,
                             text=True).stdout.split()
    assert len(workers) == 2, workers
    os.kill(int(workers[1]), signal.SIGKILL)
    slurm.wait(job, timeout=300)
    log = output(run, job)
    assert "resumed from" in log and f"trained {STEPS} steps" in log
    assert_same_weights(load_weights(reference[0]), load_weights(run))


@pytest.mark.long
def test_a_two_node_run_resumes_on_the_one_node_the_next_job_gets(slurm, recipe, reference, tmp_path):
    """The script takes the node count of the job it runs in: the 2-node run's checkpoint resumed by a
    1-node job (world size 2 -> 1) says so once and trains on to the end."""
    run = tmp_path / "run"
    shutil.copytree(reference[0] / "checkpoints/step_00000010", run / "checkpoints/step_00000010")
    job = submit(slurm, recipe, run, 29614, nodes=1, procs=1)
    slurm.wait(job, timeout=300)
    log = output(run, job)
    assert "on 1 node(s) x 1 process(es)" in log and "world size 1 (ddp" in log
    assert log.count("cgx: world size changed: step_00000010 was written by 2 ranks, this run has 1;") == 1
    assert f"trained {STEPS} steps" in log
