"""Running a sweep's points on this machine: each a ``python -m cgx.run`` process, then a ``cgx eval``
one, one point after another or ``parallel`` at a time.

A point whose run folder holds a checkpoint of its last step is not trained again; one with an older
checkpoint is resumed by cgx's own resume (the same command again); one whose evaluation record of
that step was written by the same eval command is not evaluated again. A point that fails (a non-zero
exit) is reported with its log file and the one line that says why, and the others go on.

Each process's output is appended to ``SWEEP/logs/NAME.log``, under a header line naming the command.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from ..run_dir import RunDir
from ..train.checkpoint import newest_good, step_of
from .grid import Point

EXIT_STOPPED = 75


@dataclass
class Job:
    """What running one point needs: its train and eval arguments and where it writes."""

    point: Point
    steps: int
    train_argv: list[str]
    eval_argv: list[str] | None
    run: Path
    log: Path


@dataclass
class Outcome:
    name: str
    status: str
    """``done`` (trained and evaluated here), ``finished`` (nothing left to do), ``failed``, ``stopped``."""
    reason: str = ""
    log: Path | None = None
    trained: list[str] = field(default_factory=list)
    """What happened, in order: ``trained``, ``resumed``, ``evaluated``."""

    @property
    def ok(self) -> bool:
        return self.status in ("done", "finished")


def final_step(run: Path) -> int:
    """The step of the run's newest good checkpoint; -1 without one."""
    newest = newest_good(RunDir(run).checkpoints) if RunDir(run).checkpoints.is_dir() else None
    return step_of(newest) if newest is not None else -1


def evaluated_with(run: Path, step: int, eval_argv: Sequence[str]) -> bool:
    """The run's evaluation record of ``step`` exists and was written by this same eval command."""
    path = RunDir(run).eval_record(step)
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(record, dict) and record.get("command") == shlex.join(["cgx", *eval_argv])


def failure_line(text: str, code: int) -> str:
    """The one line of a process's output that says why it failed: cgx's own ``cgx: error:`` line, else
    the last line of a traceback, else the exit code."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    for line in reversed(lines):
        if line.startswith("cgx: error:"):
            return line[len("cgx: error:"):].strip()
    if any(line.startswith("Traceback") for line in lines):
        return lines[-1]
    return f"exit code {code}" + (f": {lines[-1]}" if lines else "")


def _run(argv: list[str], log: Path, env: dict) -> tuple[int, str]:
    """Run ``argv``, its output appended to ``log``; the exit code and what this launch printed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "a", encoding="utf-8") as f:
        f.write(f"\n== cgx sweep {time.strftime('%Y-%m-%d %H:%M:%S')}: {shlex.join(argv)}\n")
        f.flush()
        start = f.tell()
        code = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, env=env, stdin=subprocess.DEVNULL).returncode
    with open(log, encoding="utf-8", errors="replace") as f:
        f.seek(start)
        return code, f.read()


def run_point(job: Job, env: dict) -> Outcome:
    """Train (or resume) the point to its last step, then evaluate it; an Outcome either way."""
    out = Outcome(job.point.name, "finished", log=job.log)
    timing = job.log.with_suffix(".time.json")
    before = final_step(job.run)
    if before < job.steps:
        started = time.perf_counter()
        code, text = _run([sys.executable, "-m", "cgx.run", *job.train_argv], job.log, env)
        seconds = time.perf_counter() - started
        after = final_step(job.run)
        add_time(timing, seconds, max(after, 0) - max(before, 0))
        if code == EXIT_STOPPED:
            return Outcome(job.point.name, "stopped", f"stopped on request at step {after} (run the sweep again "
                                                     f"to resume)", job.log, out.trained)
        if code != 0:
            return Outcome(job.point.name, "failed", f"training: {failure_line(text, code)}", job.log, out.trained)
        out.trained.append("resumed" if before >= 0 else "trained")
    step = final_step(job.run)
    if job.eval_argv is not None and not evaluated_with(job.run, step, job.eval_argv):
        code, text = _run([sys.executable, "-m", "cgx.cli", *job.eval_argv], job.log, env)
        if code != 0:
            return Outcome(job.point.name, "failed", f"cgx eval: {failure_line(text, code)}", job.log, out.trained)
        out.trained.append("evaluated")
    out.status = "done" if out.trained else "finished"
    return out


def add_time(path: Path, seconds: float, steps: int) -> None:
    """Add a training launch's wall time and steps to the point's ``NAME.time.json``."""
    total = read_time(path) or {"seconds": 0.0, "steps": 0, "launches": 0}
    total = {"seconds": total["seconds"] + seconds, "steps": total["steps"] + steps, "launches": total["launches"] + 1}
    path.write_text(json.dumps(total) + "\n", encoding="utf-8")


def read_time(path: Path) -> dict | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) and {"seconds", "steps", "launches"} <= set(value) else None


def child_env(parallel: int) -> dict:
    """The points' environment: this one; with several at a time and no OMP_NUM_THREADS set, the CPU's
    cores shared out among them (torch would otherwise start as many threads as cores in each)."""
    env = dict(os.environ)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


def run_local(jobs: Sequence[Job], parallel: int = 1, say: Callable[[str], None] = print) -> list[Outcome]:
    """Every job, ``parallel`` at a time; one failing does not stop the others. Outcomes in job order."""
    env = child_env(parallel)

    def one(job: Job) -> Outcome:
        result = run_point(job, env)
        say(status_line(result))
        return result

    if parallel <= 1:
        return [one(job) for job in jobs]
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        return list(pool.map(one, jobs))


def status_line(o: Outcome) -> str:
    from ..safe_text import shown

    if o.ok:
        what = ", ".join(o.trained) if o.trained else "finished before (skipped)"
        return f"cgx: sweep: {shown(o.name)}: {what}"
    return f"cgx: sweep: {shown(o.name)}: {o.status}: {shown(o.reason)} (log: {shown(o.log)})"

