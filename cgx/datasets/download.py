"""Download one file over HTTP(S) (or file:) with a progress bar, resuming an interrupted download.

The bytes go into ``DEST.part``; a later call continues it with an HTTP Range request (206 appends;
a server that ignores Range answers 200 and the download starts over). Only when the file is complete
(the size the server announced, and the SHA-256 if one is known) is it renamed to ``DEST``. A lost
connection or an interrupt keeps the ``.part`` file for the next call. Standard library only (urllib).
"""
from __future__ import annotations

import hashlib
import http.client
import re
import shutil
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from ..errors import DownloadError
from ..safe_text import shown

CHUNK = 1 << 16
TIMEOUT = 60.0
"""Seconds without a byte before the connection counts as lost."""


@dataclass(frozen=True)
class Downloaded:
    path: Path
    size: int
    sha256: str
    resumed_from: int
    """Bytes kept from an earlier, interrupted download (0: downloaded from the start)."""
    expected_size: int | None
    """The size the server announced and the file was checked against (None: it announced none)."""
    restarted: bool
    """A .part file was there but the server ignores Range requests, so it started over."""


def human(n: int | None) -> str:
    if n is None:
        return "?"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """(first byte, total) from ``bytes 100-999/1000`` or ``bytes */1000``; None where absent."""
    m = re.fullmatch(r"\s*bytes\s+(?:(\d+)-\d+|\*)/(\d+|\*)\s*", value or "")
    if not m:
        return None, None
    return (int(m.group(1)) if m.group(1) else None), (int(m.group(2)) if m.group(2) != "*" else None)


def _kept(part: Path) -> str:
    if part.exists() and part.stat().st_size:
        return (f"; the partial download ({human(part.stat().st_size)}) is kept in {part}: run the same "
                f"command again to resume")
    return ""


def _open(url: str, start: int):
    headers = {"User-Agent": "cgx-datasets", "Accept-Encoding": "identity"}
    if start:
        headers["Range"] = f"bytes={start}-"
    return urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(1 << 20):
            h.update(block)
    return h.hexdigest()


def download(url: str, dest: Path, *, sha256: str | None = None, progress: bool = True) -> Downloaded:
    """Fetch ``url`` into ``dest`` (through ``dest.part``, resumed if it exists); a DownloadError naming
    the URL on any failure, saying whether the partial download is kept."""
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.exists() else 0
    restarted = False
    try:
        response = _open(url, have)
    except urllib.error.HTTPError as e:
        e.close()
        if e.code == 416 and have:  # asked for bytes past the end: the part is complete, or not this file
            _, total = _content_range(e.headers.get("Content-Range"))
            if total == have:
                return _finish(url, part, dest, total, sha256, resumed_from=have, restarted=False)
            part.unlink()
            raise DownloadError(f"{url}: the server has no bytes past the {human(have)} kept in {part} (the file "
                                f"changed or is smaller); the partial download is removed: run the same command "
                                f"again to start over") from None
        raise DownloadError(f"{url}: HTTP {e.code} {e.reason}{_kept(part)}") from None
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        reason = getattr(e, "reason", None) or e
        raise DownloadError(f"{url}: cannot connect ({reason}){_kept(part)}") from None

    with response:
        status = getattr(response, "status", None) or 200  # file: URLs have no status
        length = response.headers.get("Content-Length")
        length = int(length) if length and length.isdigit() else None
        if have and status == 206:
            first, total = _content_range(response.headers.get("Content-Range"))
            if first != have:
                raise DownloadError(f"{url}: asked to resume at byte {have}, the server answered from byte {first}; "
                                    f"delete {part} to start over")
            if total is None and length is not None:
                total = have + length
            mode, resumed_from = "ab", have
        else:
            if have:
                restarted = True
                print(f"cgx: {url}: the server ignores Range requests; downloading from the start "
                      f"(the {human(have)} in {shown(part)} are replaced)", file=sys.stderr)
            total, mode, resumed_from = length, "wb", 0
        done = resumed_from
        free = shutil.disk_usage(part.parent).free
        if total is not None and total - done > free:
            raise DownloadError(f"{part.parent}: {human(free)} free, the download needs {human(total - done)} more "
                                f"(and about as much again to unpack){_kept(part)}")
        from tqdm import tqdm

        try:
            with open(part, mode) as f, tqdm(total=total, initial=done, unit="B", unit_scale=True, unit_divisor=1024,
                                             desc=dest.name, disable=not progress, leave=True) as bar:
                while True:
                    try:
                        block = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as e:
                        raise DownloadError(f"{url}: connection lost after {human(done)} of {human(total)} "
                                            f"({e or type(e).__name__}){_kept_after(part, f)}") from None
                    if not block:
                        break
                    try:
                        f.write(block)
                    except OSError as e:
                        raise DownloadError(f"{part}: cannot write ({e.strerror or e}){_kept_after(part, f)}") from None
                    done += len(block)
                    bar.update(len(block))
        except KeyboardInterrupt:
            print(f"\ncgx: interrupted{_kept(part)}", file=sys.stderr)
            raise
    return _finish(url, part, dest, total, sha256, resumed_from=resumed_from, restarted=restarted)


def _kept_after(part: Path, f) -> str:
    f.flush()
    return _kept(part)


def _finish(url: str, part: Path, dest: Path, total: int | None, sha256: str | None, *,
            resumed_from: int, restarted: bool) -> Downloaded:
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(f"{url}: the connection closed after {human(size)} of {human(total)}{_kept(part)}")
    if total is not None and size > total:
        part.unlink()
        raise DownloadError(f"{url}: {human(size)} received, the server announced {human(total)}; the download "
                            f"is removed: run the same command again to start over")
    digest = sha256_of(part)
    if sha256 is not None and digest != sha256.lower():
        part.unlink()
        raise DownloadError(f"{url}: SHA-256 {digest}, expected {sha256.lower()}: the download is removed (a "
                            f"mirror with another file, or a damaged transfer)")
    part.replace(dest)
    return Downloaded(dest, size, digest, resumed_from, total, restarted)
