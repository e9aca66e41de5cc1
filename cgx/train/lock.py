"""One run per run folder: rank 0 holds an exclusive lock on the run's ``LOCK`` file (``RunDir.lock``)
while it trains.

The lock is an ``flock`` on the file, so the kernel releases it when the holder dies, however it
dies (SIGKILL included); the file names the holder (host, pid, start time) for the error a second
run gets. A lock file left by a process that is gone is taken over with a warning."""
from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import sys
import time
from pathlib import Path

from ..errors import SetupError
from ..safe_text import shown


class RunLock:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise SetupError naming its holder (or why the folder cannot be used)."""
        while True:
            fd = self._open()
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe(os.read(fd, 4096))
                os.close(fd)
                raise SetupError(f"run folder {self.path.parent} is in use by another cgx run ({holder}); "
                                 f"wait for it or stop it, or set train.run_dir to another folder") from None
            # The holder may have removed the file between our open and our lock: lock the file
            # that is at the path now, or two runs would each hold a lock on a different file.
            try:
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        previous = os.read(fd, 4096)
        if previous.strip():
            print(f"cgx: warning: taking over the lock of {shown(self.path.parent)} from a run that is gone "
                  f"({_describe(previous)})", file=sys.stderr)
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, json.dumps({"host": socket.gethostname(), "pid": os.getpid(),
                                 "started": time.strftime("%Y-%m-%d %H:%M:%S %Z")}).encode())
        os.fsync(fd)
        self.fd = fd

    def _open(self) -> int:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as e:
            if e.errno == errno.ELOOP:  # never through a link (cgx.run_dir.refuse_link)
                from ..run_dir import refuse_link

                refuse_link(self.path)
            raise SetupError(f"cannot use {self.path.parent} as the run folder (train.run_dir): cannot create "
                             f"{e.filename or self.path}: {e.strerror}; choose a folder this user can write") from None

    def release(self) -> None:
        """Remove the file while still holding it (see acquire), then unlock."""
        if self.fd is None:
            return
        try:
            self.path.unlink(missing_ok=True)
        finally:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None


def _describe(raw: bytes) -> str:
    try:
        info = json.loads(raw.decode() or "{}")
        return f"host {info['host']}, pid {info['pid']}, started {info['started']}"
    except (ValueError, KeyError, UnicodeDecodeError):
        return "holder unknown"
