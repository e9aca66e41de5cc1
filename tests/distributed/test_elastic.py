"""torchrun elastic on one machine: two torchrun agents ("nodes", one worker each) with c10d rendezvous
on loopback. One agent is killed: the job shrinks to one rank and resumes from the newest checkpoint;
an agent joins: the job grows back to two. It ends with every step trained once (the run's step log,
log.jsonl, which a resumed run rewrites from its checkpoint on) and says each world-size change once."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import REPO

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.long]

HERE = Path(__file__).resolve().parent
STEPS = 12


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agent:
    """One torchrun agent (its own process group, so that killing it takes its worker along)."""

    def __init__(self, name: str, port: int, recipe: Path, logs: Path) -> None:
        self.log = logs / f"{name}.log"
        self.alive = True
        # LOGLEVEL=INFO: torchrun's agent says when it sees a node join ("Detected 1 new nodes").
        # TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1: with the agents' shared store (torch >= 2.5's default) a
        # round that a node joins never completes when rank 0 stays rank 0 (docs/cluster.md).
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "LOGLEVEL": "INFO",
               "TORCH_DISABLE_SHARE_RDZV_TCP_STORE": "1"}
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1:2", "--nproc-per-node=1",
               "--rdzv-backend=c10d", f"--rdzv-endpoint=127.0.0.1:{port}", "--rdzv-id=elastic-test",
               "--rdzv-conf=last_call_timeout=5", "--max-restarts=3", "--monitor-interval=0.5",
               "-m", "cgx.run", str(recipe)]
        self.proc = subprocess.Popen(cmd, stdout=self.log.open("w"), stderr=subprocess.STDOUT, env=env, cwd=REPO,
                                     start_new_session=True)

    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """The agent and its workers (torchrun starts each worker in a session of its own), by PID."""
        for pid in [self.proc.pid, *descendants(self.proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        self.alive = False


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def wait_for(what: str, check, agents, timeout: float = 180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        if any(a.alive and a.proc.poll() not in (None, 0) for a in agents):
            break
        time.sleep(0.2)
    raise AssertionError(f"waited for {what}; agents' logs:\n" + "\n".join(f"--- {a.log.name}\n{a.text()[-4000:]}"
                                                                           for a in agents))


def logged_steps(run: Path) -> list[int]:
    path = run / "log.jsonl"
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue  # a line being written
    return [r["step"] for r in records if r["kind"] == "scalars"]


def test_shrinks_when_an_agent_dies_and_grows_when_one_joins(make_recipe, tmp_path):
    run, hold = tmp_path / "run", tmp_path / "hold"
    recipe = make_recipe({"plugins": [str(HERE / "elastic_gate.py")],
                          "logging": {"backends": [{"name": "jsonl"}, {"name": "gate", "hold": str(hold)}]},
                          "train": {"steps": STEPS, "ckpt_every": 2, "keep": 10, "log_every": 1, "image_every": 0}})
    port = free_port()
    hold.write_text("4")  # rank 0 waits at step 4 (its checkpoint not yet written: the newest is step 2)
    a = Agent("a", port, recipe, tmp_path)  # hosts the rendezvous store (the first on the endpoint)
    time.sleep(1.0)
    b = Agent("b", port, recipe, tmp_path)
    agents = [a, b]
    try:
        wait_for("step 4 on two ranks", lambda: 4 in logged_steps(run), agents)
        assert "world size 2 " in a.text()
        b.kill()  # a node leaves, its worker with it
        hold.write_text("8")
        wait_for("the shrink to one rank", lambda: "this run has 1;" in a.text(), agents)
        wait_for("step 8 on one rank", lambda: 8 in logged_steps(run), agents)
        c = Agent("c", port, recipe, tmp_path)  # a node joins
        agents.append(c)
        wait_for("the join to be seen", lambda: "new nodes from group_rank" in a.text(), agents)
        hold.unlink()
        wait_for("the end", lambda: a.proc.poll() is not None and c.proc.poll() is not None, agents, timeout=240)
    finally:
        for agent in agents:
            if agent.proc.poll() is None:
                agent.kill()
    log = a.text()
    assert a.proc.returncode == 0 and c.proc.returncode == 0, log[-4000:] + c.text()[-4000:]
    changes = [line for line in log.splitlines() if line.startswith("cgx: world size changed")]
    assert len(changes) == 2, changes
    assert "was written by 2 ranks, this run has 1;" in changes[0]
    assert "was written by 1 rank, this run has 2;" in changes[1]
    assert all("global batch" in c and "accumulation" in c for c in changes)
    assert logged_steps(run) == list(range(1, STEPS + 1))  # every step of the run, each once
    assert (run / "checkpoints" / f"step_{STEPS:08d}").is_dir()
    # The image pools carried over the shrink: at step 2 each of the 2 ranks held 2 fakes per pool (batch 1);
    # the 1-rank run resumed with all 4 (a fresh pool would hold 2 at its step 4) and has queried twice since,
    # so at least 2 of the 4 are the old ranks' images.
    ckpts = run / "checkpoints"
    old = torch.cat([torch.load(ckpts / f"step_00000002/rank_0000{r}.pt", weights_only=True)["buffers"]["pools"][0]["images"]
                     for r in (0, 1)])
    new = torch.load(ckpts / "step_00000004/rank_00000.pt", weights_only=True)["buffers"]["pools"][0]["images"]
    assert len(old) == 4 and len(new) == 4
    assert sum(any(torch.equal(image, o) for o in old) for image in new) >= 2
