"""One ``cgx datasets fetch`` per data set folder at a time: ``DIR/.NAME.fetching``.

Two fetches of one name into one folder share the download (``NAME.zip.part``) and the unpacking
folder (``.NAME.unpacking``): the second would resume or remove the first's work mid-way. The first
holds an ``flock`` on the lock file for the whole download and unpacking (the kernel drops it when
the process ends, however it ends); a second is refused at once, naming the holder. The file is
created fresh (never through a link) and removed when the fetch ends."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from ..errors import UsageError


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.fetching")


class FetchLock:
    def __init__(self, target: Path) -> None:
        self.target, self.path = Path(target), lock_path(Path(target))
        self.fd: int | None = None

    def __enter__(self) -> "FetchLock":
        while True:
            try:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            except OSError as e:
                raise UsageError(f"{self.path}: cannot be used as the lock of this fetch ({e.strerror}); it must be "
                                 f"a plain file or absent") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 64).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise UsageError(f"{self.target} is being fetched by another cgx (pid {holder}, lock {self.path}); "
                                 f"wait for it to end, or fetch into another --to") from None
            # the holder removes the file as it ends: lock the file at the path now, not one removed meanwhile
            try:
                same = os.fstat(fd).st_ino == os.lstat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            self.path.unlink(missing_ok=True)  # while still held: a waiting fetch then locks a fresh file
            os.close(self.fd)
            self.fd = None
