"""Which shard sets ``cgx shards`` may write into its OUT folder: the no-overwrite rule of every cgx
output (``cgx.outputs``) for a set of files. A shard set is ``NAME.json`` (its index) and the
``NAME-NNNNNN.tar`` shards it names. An existing set is replaced only with ``--overwrite``, and then
only where cgx wrote it: an index of cgx's format naming every ``NAME-*.tar`` there, no link among
them. Once the new set is in place, the old set's shards it did not rewrite are removed (they were
cgx's, named by cgx's index), so no stale shard is left for a brace pattern to pick up."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Iterable, Sequence

from ..errors import UsageError
from ..run_dir import refuse_link
from .shards import INDEX_FORMAT


def _tars(out: Path, name: str) -> list[Path]:
    pattern = re.compile(re.escape(name) + r"-\d{6,}\.tar")
    return sorted(p for p in out.iterdir() if pattern.fullmatch(p.name)) if out.is_dir() else []


def _old_shards(index: Path) -> set[str] | None:
    """The shard names of a cgx index at ``index``; None if it is not one."""
    try:
        data = json.loads(index.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != INDEX_FORMAT:
            return None
        return {str(s["name"]) for s in data["shards"]}
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return None


def check_shard_sets(out: str | Path, names: Iterable[str], overwrite: bool) -> dict[str, set[str]]:
    """Before anything is written: UsageError when a set ``NAME`` exists in ``out`` and ``overwrite`` is
    not given, or it is not a set cgx wrote (whatever ``overwrite`` says). Returns, per set to be
    replaced, the shard names of the old one (``remove_stale`` takes them)."""
    out = Path(out)
    replaced = {}
    for name in names:
        index = out / f"{name}.json"
        found = [p for p in (index, *_tars(out, name)) if p.exists() or p.is_symlink()]
        if not found:
            continue
        for p in found:
            refuse_link(p)
        more = f" and {len(found) - 1} more" if len(found) > 1 else ""
        if not overwrite:
            raise UsageError(f"shard set {name} exists already in {out} ({found[0]}{more}); pass --overwrite to "
                             f"replace it, or choose another OUT folder")
        old = _old_shards(index) if index.is_file() else None
        foreign = [p for p in found if p != index and (old is None or p.name not in old)]
        if old is None or foreign:
            if not index.exists():
                what = f"{found[0]}{more} has no index {index.name} (left by an interrupted cgx shards? remove it)"
            elif old is None:
                what = f"{index} is not a shard index cgx wrote"
            else:
                what = f"{foreign[0]} is not a shard of the set its index names"
            raise UsageError(f"{what}: cgx replaces only shard sets it wrote, even with --overwrite; "
                             f"choose another OUT folder")
        replaced[name] = old
    return replaced


def remove_stale(out: str | Path, replaced: dict[str, set[str]], written: Sequence) -> None:
    """After the new sets are in place: the old sets' shards that no new index names."""
    new = {r.name: {s["name"] for s in r.shards} for r in written}
    for name, old in replaced.items():
        for shard in sorted(old - new.get(name, set())):
            path = Path(out) / shard
            if path.is_file() and not path.is_symlink():
                path.unlink()
