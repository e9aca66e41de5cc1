"""What cgx may write over: the one check every command makes before it writes a file a user names.

No command writes over one of its inputs (no flag allows that), and none replaces an existing file
that it did not create without an explicit flag (``--overwrite``, ``--force``). A run folder's
``config.yaml`` is cgx's (it starts with CONFIG_MARK, or the folder holds the run's checkpoints);
any other ``config.yaml`` there is a user's file and a run will not replace it."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import UsageError

CONFIG_MARK = "# cgx: the resolved recipe of the run in this folder, written at each launch"


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def check_apart(out: Path, src: Path, out_name: str = "output folder", src_name: str = "the input folder") -> None:
    """``out`` and ``src`` (folders) are neither the same, nor one inside the other, so that nothing
    written under ``out`` can land on a file under ``src``."""
    o, s = Path(out).resolve(), Path(src).resolve()
    if _inside(o, s) or _inside(s, o):
        how = "is" if o == s else ("is inside" if _inside(o, s) else "contains")
        raise UsageError(f"{out_name} {out} {how} {src_name} {src}: choose a folder apart from it, "
                         f"so that no input can be replaced")


def check_targets(targets: Iterable[Path], *, inputs: Iterable[Path] = (), input_folders: Iterable[Path] = (),
                  overwrite: bool, flag: str = "--overwrite") -> None:
    """Before anything is written: no target is an input file or inside an input folder (whatever
    ``overwrite`` says), none is a folder, and none exists unless ``overwrite`` (the option ``flag``)."""
    targets = list(targets)
    files = {Path(p).resolve(): Path(p) for p in inputs}
    folders = [(Path(f).resolve(), Path(f)) for f in input_folders]
    existing = []
    for t in targets:
        if Path(t).is_symlink():
            from .run_dir import refuse_link

            refuse_link(t)
        r = Path(t).resolve()
        if r in files:
            raise UsageError(f"{t} is an input ({files[r]}): cgx never writes over its inputs; "
                             f"choose another output")
        for rf, f in folders:
            if _inside(r, rf):
                raise UsageError(f"{t} is inside the input folder {f}: cgx never writes among its inputs; "
                                 f"choose another output")
        if r.is_dir():
            raise UsageError(f"{t} is a folder; name a file to write")
        if r.exists():
            existing.append(t)
    if existing and not overwrite:
        shown = ", ".join(str(p) for p in existing[:3]) + (" ..." if len(existing) > 3 else "")
        what = f"{len(existing)} of the {len(targets)} output files exist" if len(targets) > 1 else "exists"
        raise UsageError(f"{shown} {what} already; pass {flag} to replace "
                         f"{'them' if len(existing) > 1 else 'it'}, or choose another output")


def written_by_cgx(path: str | Path) -> bool:
    """``path`` is a regular file (not a link) whose first line is CONFIG_MARK: a run's resolved
    recipe, as cgx writes it (``cgx.config.dump_config``)."""
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            first = f.read(len(CONFIG_MARK) + 2)
    except OSError:
        return False
    return first.decode("utf-8", "replace").splitlines()[:1] == [CONFIG_MARK]


def check_run_config(path: Path, has_checkpoints: bool) -> None:
    """A run may write its resolved recipe to ``path`` (RUN/config.yaml) unless a user's own file is
    there: one that cgx did not write (no CONFIG_MARK) in a folder without the run's checkpoints."""
    path = Path(path)
    if not path.exists() or has_checkpoints or written_by_cgx(path):
        return
    from .errors import ConfigError

    raise ConfigError(f"{path} exists and was not written by cgx (your recipe?): a run writes its resolved recipe "
                      f"there and would replace it; move that file, or set train.run_dir to another folder")


def write_new_file(path: str | Path, text: str) -> Path:
    """Write ``text`` to a new file beside ``path`` (``O_EXCL``: never through a link), then rename it
    onto ``path``: a link at ``path`` is replaced itself, never the file it points to."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path
