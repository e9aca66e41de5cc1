"""What every DataLoader worker of cgx does first."""
from __future__ import annotations

import signal

STOP_SIGNALS = (signal.SIGTERM, signal.SIGUSR1)


def ignore_stop_signals(worker_id: int) -> None:
    """``worker_init_fn``: ignore the stop signals. SLURM and most schedulers send SIGTERM to the
    whole process group, so the loader workers get it too; a worker killed by it makes the training
    process fail in the very checkpoint it is writing to stop cleanly. The training process handles
    the signal (cgx.train.stop) and shuts its workers down itself."""
    for sig in STOP_SIGNALS:
        signal.signal(sig, signal.SIG_IGN)
