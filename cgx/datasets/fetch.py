"""``cgx datasets fetch``: download one of the authors' data sets and unpack it in their layout.

DIR/NAME.zip (or .tar.gz) is downloaded (resumable, see ``download``), checked, unpacked safely into
DIR/NAME (see ``extract``) and then removed, as the authors' scripts do. An archive that was in DIR
before the command (put there by hand, or left by an interrupted unpacking) is used instead of a
download and kept. A refused archive (corrupt, unsafe) that this command downloaded is removed, so
DIR holds nothing new; the data set folder is never replaced.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from ..errors import ArchiveError, UsageError
from . import catalog
from ..safe_text import shown
from .download import Downloaded, download, human, sha256_of
from .extract import MAX_RATIO, unpack
from .fetch_lock import FetchLock

DEFAULT_DIR = "datasets"


@dataclass(frozen=True)
class Fetched:
    dataset: catalog.DataSet
    target: Path
    archive: Path
    url: str
    downloaded: Downloaded | None
    """None when the archive was in DIR already (then it is kept)."""
    archive_kept: bool
    folders: dict[str, int]
    """Each top-level folder of the data set -> how many files it holds (recursive)."""


def _folders(target: Path) -> dict[str, int]:
    return {d.name: sum(1 for f in d.rglob("*") if f.is_file())
            for d in sorted(target.iterdir()) if d.is_dir()}


def fetch(name: str, to: str | Path = DEFAULT_DIR, *, url: str | None = None, sha256: str | None = None,
          keep_archive: bool = False, progress: bool = True, log: Callable[[str], None] = print,
          max_ratio: float = MAX_RATIO) -> Fetched:
    ds = catalog.find(name)
    if ds.unavailable:
        raise UsageError(f"{ds.full_name}: {ds.unavailable}")
    if sha256 is not None and not (len(sha256) == 64 and all(c in "0123456789abcdefABCDEF" for c in sha256)):
        raise UsageError(f"--sha256 {sha256!r}: 64 hexadecimal digits")
    if not max_ratio >= 1:
        raise UsageError(f"--max-ratio {max_ratio}: at least 1 (bytes unpacked per archive byte)")
    source = ds.url(catalog.base_url(url))
    to = Path(to)
    target = to / ds.name
    if target.exists():
        raise ArchiveError(f"{target} exists already; a data set folder is never replaced: remove it, or fetch "
                           f"into another folder with --to")
    to.mkdir(parents=True, exist_ok=True)
    with FetchLock(target):
        if target.exists() or target.is_symlink():  # made by a fetch that ended while this one waited to start
            raise ArchiveError(f"{target} exists already; a data set folder is never replaced: remove it, or fetch "
                               f"into another folder with --to")
        return _fetch_locked(ds, source, to, target, sha256, keep_archive, progress, log, max_ratio)


def _fetch_locked(ds: catalog.DataSet, source: str, to: Path, target: Path, sha256: str | None, keep_archive: bool,
                  progress: bool, log: Callable[[str], None], max_ratio: float) -> Fetched:
    archive = to / ds.archive_name
    expected = sha256 or ds.sha256
    got = None
    if archive.exists():
        log(f"cgx: {archive} is here already: unpacking it (not downloaded; kept afterwards)")
        if expected and sha256_of(archive) != expected.lower():
            raise ArchiveError(f"{archive}: SHA-256 is not {expected.lower()}; remove it to download it anew")
    else:
        log(f"cgx: downloading {source}")
        got = download(source, archive, sha256=expected, progress=progress)
        resumed = f", resumed at {human(got.resumed_from)}" if got.resumed_from else ""
        size = (f"size {human(got.size)} = the server's Content-Length" if got.expected_size is not None
                else f"size {human(got.size)} (the server gave no length to check)")
        check = "SHA-256 matches" if expected else catalog.NO_CHECKSUM
        log(f"cgx: downloaded {archive}{resumed}: {size}; {check} (sha256 {got.sha256})")
    try:
        unpack(archive, target, progress=progress, max_ratio=max_ratio)
    except ArchiveError as e:
        if got is not None and not target.exists():
            archive.unlink(missing_ok=True)
            raise ArchiveError(f"{e}; the downloaded archive is removed") from None
        raise
    kept = got is None or keep_archive
    if not kept:
        archive.unlink()
    return Fetched(ds, target, archive, source, got, kept, _folders(target))


def summary(f: Fetched) -> str:
    """What was written, and the next commands: shards (paired for an aligned layout) or the folder source."""
    lines = [f"cgx: {f.dataset.full_name} is in {shown(f.target)}/ (the authors' layout):"]
    lines += [f"  {shown(name) + '/':<14} {count} files" for name, count in f.folders.items()]
    if f.archive_kept:
        lines.append(f"  archive kept: {shown(f.archive)}")
    shown_out = shown(f.target.parent / f"{f.target.name}_shards")
    shown_target = shown(f.target)
    names = set(f.folders)
    if names & {"trainA", "trainB"}:
        lines.append(f"next: cgx shards {shown_target} {shown_out}      # unpaired shards, one set per split")
        lines.append(f"  or train from the folders: cgx train cyclegan_256 data.root={shown_target}")
    if "train" in names:
        lines.append(f"next: cgx shards {shown_target} {shown_out} --paired      # aligned A | B pairs "
                     f"(data.paired=true)")
        lines.append(f"  or train from the folders: cgx train pix2pix_256 data.root={shown_target}")
    if not names & {"trainA", "trainB", "train"}:
        lines.append(f"next: cgx shards {shown_target} {shown_out}      # (no train/ or trainA/ here: see its "
                     f"folders above)")
    return "\n".join(lines)


def table(url: str | None = None) -> str:
    """``cgx datasets list``: every data set by the name to type, its kind and what it holds."""
    base, source = catalog.base_url(url), catalog.base_url_source(url)
    rows = [(catalog.typed_name(d), f"{d.collection} {catalog.COLLECTIONS[d.collection]}",
             d.about + (" -- not distributed (licence): cityscapes-dataset.com" if d.unavailable else ""))
            for d in catalog.CATALOG]
    width = max(len(r[0]) for r in rows)
    lines = [f"{'name':<{width}}  {'archive':<16}  about"]
    lines += [f"{t:<{width}}  {k:<16}  {a}" for t, k, a in rows]
    lines.append("")
    lines.append("cyclegan/NAME (unpaired, trainA/ trainB/ testA/ testB/) and pix2pix/NAME (aligned A | B pairs, "
                 "train/ val/ test/)\nalways work; facades and maps are in both, so name the collection.")
    lines.append(f"archives from {base}/{{cyclegan,pix2pix}}/datasets/ ({source}; --url or ${catalog.URL_ENV} "
                 f"for a mirror);\n{catalog.NO_CHECKSUM} for any of them: the size is checked against the server's.")
    return "\n".join(lines)
