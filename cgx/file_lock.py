"""An exclusive ``flock`` on a lock file at a path: the one mechanism behind a run folder's ``LOCK``
(cgx.train.lock) and a data set fetch's ``.NAME.fetching`` (cgx.datasets.fetch_lock).

The kernel drops an ``flock`` when its holder dies, however it dies (SIGKILL included). The file is
opened ``O_NOFOLLOW`` (never through a link), and its holder removes it while still holding it, so a
waiter may lock a file that is no longer at the path: ``take`` then retries on the file that is."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import Callable


def take(path: Path, busy: Callable[[bytes], Exception], unusable: Callable[[OSError], Exception]) -> int:
    """A locked descriptor of the file at ``path`` (created if absent), positioned at its start. Raises
    ``busy(what the holder wrote)`` when another process holds it, ``unusable(error)`` when it cannot be opened
    (a link, a folder, no permission)."""
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as e:
            raise unusable(e) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 4096)
            os.close(fd)
            raise busy(holder) from None
        try:
            same = os.fstat(fd).st_ino == os.lstat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def write_holder(fd: int, text: str) -> None:
    """Replace what the lock file says about its holder."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode())
    os.fsync(fd)


def release(path: Path, fd: int) -> None:
    """Remove the file while still holding it (a waiter then locks a fresh one), then unlock."""
    try:
        Path(path).unlink(missing_ok=True)
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
