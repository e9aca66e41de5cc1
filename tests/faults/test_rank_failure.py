"""One failing rank ends the whole job within seconds, its reason printed once, and a restart resumes
(issue 17, case 6): no collective on the error path (cgx.distributed.failure)."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cgx.train.checkpoint import list_checkpoints
from conftest import REPO, assert_clean_exit, torchrun


def environ(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)


def parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def loader_workers(rank: int, run_dir: Path) -> list[int]:
    """DataLoader worker processes of the rank ``rank`` training into ``run_dir``."""
    def ours(pid):
        env = environ(pid)
        return env.get("RANK") == str(rank) and env.get("CGX_TEST_RUN") == str(run_dir)
    pids = [int(p) for p in os.listdir("/proc") if p.isdigit()]
    return [p for p in pids if ours(p) and ours(parent(p))]


@pytest.mark.multiprocess
def test_a_killed_loader_worker_on_one_rank_ends_the_job_at_once_and_a_restart_resumes(make_recipe, tmp_path):
    run = tmp_path / "run"
    recipe = make_recipe({"data": {"workers": 1},
                          "train": {"steps": 100000, "ckpt_every": 4, "log_every": 1000, "image_every": 0}})
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "CGX_TEST_RUN": str(run)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "cgx.run",
           str(recipe)]
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline = time.time() + 180
        while not list_checkpoints(run / "checkpoints"):
            assert proc.poll() is None, proc.stdout.read()
            assert time.time() < deadline, "no checkpoint written"
            time.sleep(0.2)
        workers = loader_workers(1, run)
        assert len(workers) == 1, workers
        os.kill(workers[0], signal.SIGKILL)
        killed = time.time()
        out, _ = proc.communicate(timeout=120)
        took = time.time() - killed
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert took < 60, f"the job took {took:.0f} s to end\n{out[-3000:]}"
    assert proc.returncode != 0
    reasons = [ln for ln in out.splitlines() if ln.startswith("cgx: error:")]
    assert len(reasons) == 1, out[-3000:]
    assert "rank 1" in reasons[0] and re.search(rf"DataLoader worker \(pid(\(s\))? {workers[0]}\)", reasons[0])
    assert "/cgx/" not in out  # torchrun prints its own traceback (ChildFailedError); none from cgx
    # torchrun (or the user) runs it again: it resumes from the last checkpoint.
    last = int(list_checkpoints(run / "checkpoints")[-1].name.split("_")[1])
    again = torchrun(2, str(recipe), f"train.steps={last + 2}")
    assert_clean_exit(again)
    assert f"resumed from {run / 'checkpoints' / f'step_{last:08d}'}" in again.stdout + again.stderr
