"""One run per run folder: rank 0 holds an exclusive lock on the run's ``LOCK`` file (``RunDir.lock``)
while it trains.

The lock is an ``flock`` on the file, so the kernel releases it when the holder dies, however it
dies (SIGKILL included); the file names the holder (host, pid, start time) for the error a second
run gets. A lock file left by a process that is gone is taken over with a warning."""
from __future__ import annotations

import errno
import json
import os
import socket
import sys
import time
from pathlib import Path

from .. import file_lock
from ..errors import SetupError
from ..safe_text import shown


class RunLock:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SetupError naming its holder (or why the folder cannot be used)."""
        def busy(holder: bytes) -> SetupError:
            return SetupError(f"run folder {self.path.parent} is in use by another cgx run ({_describe(holder)}); "
                              f"wait for it or stop it, or set train.run_dir to another folder")

        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._unusable(e) from None
        fd = file_lock.take(self.path, busy, self._unusable)
        previous = os.read(fd, 4096)
        if previous.strip():
            print(f"cgx: warning: taking over the lock of {shown(self.path.parent)} from a run that is gone "
                  f"({_describe(previous)})", file=sys.stderr)
        file_lock.write_holder(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                               "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}))
        self.fd = fd

    def _unusable(self, e: OSError) -> Exception:
        if e.errno == errno.ELOOP:  # never through a link (cgx.run_dir.refuse_link)
            from ..run_dir import refuse_link

            try:
                refuse_link(self.path)
            except Exception as refused:  # noqa: BLE001 - refuse_link raises its one-line error
                return refused
        return SetupError(f"cannot use {self.path.parent} as the run folder (train.run_dir): cannot create "
                          f"{e.filename or self.path}: {e.strerror}; choose a folder this user can write")

    def release(self) -> None:
        """Remove the file while still holding it (see acquire), then unlock."""
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        file_lock.release(self.path, fd)


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode() or "{}")
        return f"host {info['host']}, pid {info['pid']}, started {info['started']}"
    except (ValueError, KeyError, UnicodeDecodeError):
        return "holder unknown"
