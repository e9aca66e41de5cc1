"""A request to write a checkpoint and stop at the next step boundary.

Made by SIGUSR1 or SIGTERM to a training process (SLURM's warning before a time limit or
preemption, ``torchrun`` shutting down) or by creating the run's ``STOP`` file (``RunDir.stop``) (what
``cluster/slurm/train.sbatch`` does: one file reaches every rank on every node). The trainer
agrees every rank's request over a host-side channel (``Strategy.stop_vote``), so all ranks stop at the same step.
"""
from __future__ import annotations

import os
import re
import signal
import threading
from pathlib import Path

from ..run_dir import RunDir

SIGNALS = (signal.SIGUSR1, signal.SIGTERM)


def mark_stopped(run: RunDir, step: int, reason: str) -> None:
    """Write the run's ``STOPPED`` file (rank 0, when a run stops on request; removed by the next
    launch): under torchrun, whose own exit code is 1 for any worker failure, it tells a batch script
    that the run stopped to be resumed (cluster/slurm/train.sbatch requeues on it), and it keeps
    torchrun from restarting workers that were asked to stop."""
    path = run.stopped
    tmp = path.with_name(path.name + ".part")
    restart = os.environ.get(RESTART_COUNT)
    rounds = f" [torchrun restart {int(restart)}]" if restart is not None and restart.isdigit() else ""
    tmp.write_text(f"stopped at step {step} on request ({reason}); run the same command again to resume{rounds}\n")
    tmp.replace(path)


def stopped_marker(run: RunDir) -> Path | None:
    path = run.stopped
    return path if path.is_file() else None


RESTART_COUNT = "TORCHELASTIC_RESTART_COUNT"
"""torchrun's count of worker restarts after failures; a restart for a membership change (an elastic
node joining) does not count, so it does not change."""


def stays_stopped(run: RunDir) -> Path | None:
    """The ``STOPPED`` marker, if these workers were asked to stop and torchrun restarted them after
    that (their exit 75 counted as a failure: a later restart count than the marker's): they stay
    stopped. Workers that torchrun stopped (SIGTERM) and restarted for a membership change of an
    elastic job keep the count the marker holds: they train on."""
    marker = stopped_marker(run)
    restart = os.environ.get(RESTART_COUNT, "0")
    if marker is None or not restart.isdigit() or int(restart) == 0:
        return None
    try:
        found = re.search(r"\[torchrun restart (\d+)\]", marker.read_text(errors="replace"))
    except OSError:
        return None
    return None if found is not None and int(found.group(1)) == int(restart) else marker


class StopRequest:
    def __init__(self, stop_file: Path, signals=SIGNALS) -> None:
        self.file = Path(stop_file)
        self.signalled: int | None = None
        self._previous = {}
        if threading.current_thread() is threading.main_thread():
            for sig in signals:
                self._previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        self.signalled = signum

    def requested(self) -> bool:
        return self.signalled is not None or self.file.exists()

    def reason(self) -> str:
        """What asked this run to stop: this process's signal, the stop file, or (neither here) another
        rank's request, agreed over the ranks (``Strategy.stop_vote``)."""
        if self.signalled is not None:
            return f"signal {signal.Signals(self.signalled).name}"
        if self.file.exists():
            return f"stop file {self.file}"
        return "a request to stop that another rank received"

    def clear(self) -> None:
        self.file.unlink(missing_ok=True)

    def close(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()
