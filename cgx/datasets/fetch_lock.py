"""One ``cgx datasets fetch`` per data set folder at a time: ``DIR/.NAME.fetching``.

Two fetches of one name into one folder share the download (``NAME.zip.part``) and the unpacking
folder (``.NAME.unpacking``): the second would resume or remove the first's work mid-way. The first
holds an ``flock`` on the lock file for the whole download and unpacking (the kernel drops it when
the process ends, however it ends); a second is refused at once, naming the holder. The file is
created fresh (never through a link) and removed when the fetch ends."""
from __future__ import annotations

import os
from pathlib import Path

from .. import file_lock
from ..errors import UsageError


def lock_path(target: Path) -> Path:
    return target.with_name(f".{target.name}.fetching")


class FetchLock:
    def __init__(self, target: Path) -> None:
        self.target, self.path = Path(target), lock_path(Path(target))
        self.fd: int | None = None

    def __enter__(self) -> "FetchLock":
        def busy(holder: bytes) -> UsageError:
            pid = holder.decode(errors="replace").strip()[:64] or "?"
            return UsageError(f"{self.target} is being fetched by another cgx (pid {pid}, lock {self.path}); "
                              f"wait for it to end, or fetch into another --to")

        def unusable(e: OSError) -> UsageError:
            return UsageError(f"{self.path}: cannot be used as the lock of this fetch ({e.strerror}); it must be "
                              f"a plain file or absent")

        self.fd = file_lock.take(self.path, busy, unusable)
        file_lock.write_holder(self.fd, str(os.getpid()))
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            file_lock.release(self.path, self.fd)
            self.fd = None
