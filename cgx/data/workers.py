"""What every DataLoader worker of cgx does first, and how the workers end with the process."""
from __future__ import annotations

import atexit
import multiprocessing
import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn``: ignore the stop signals. SLURM and most schedulers send SIGTERM to the
    whole process group (or every process of the job), so the loader workers get it too; a worker
    killed by it makes the training process fail in the very checkpoint it is writing to stop
    cleanly. The training process handles the signal (cgx.train.stop) and shuts its workers down."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)


def _kill_leftover_workers() -> None:
    """At interpreter exit, multiprocessing ends daemonic children with SIGTERM and waits for them,
    which a worker ignoring SIGTERM never answers (a DataLoader iterator still referenced, e.g. by
    a traceback, was never shut down). Registered after multiprocessing's own exit function, this
    runs first and ends them with SIGKILL: the same end, without the wait."""
    children = [c for c in multiprocessing.active_children() if c.daemon]
    if not children:
        return
    # PyTorch's SIGCHLD handler would report each killed worker as a failure: we are exiting.
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    for child in children:
        child.kill()
    for child in children:
        child.join(timeout=5)


atexit.register(_kill_leftover_workers)
