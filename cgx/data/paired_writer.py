"""``cgx shards SRC OUT --paired``: paired shards (``cgx.data.paired``), written as ``cgx.data.shard_writer``
writes unpaired ones (sorted, deterministic, atomic, the same index format with ``"paired": true``).

- SRC in the aligned layout (``train/ val/ test/`` of A | B images; or one plain folder of them): one shard
  set per split (``OUT/train-000000.tar``, ``OUT/train.json``); a sample keeps the aligned file's original
  bytes as ``{key}.ab.{ext}`` (split when read: nothing re-encoded).
- ``--b FOLDER``: SRC holds the A images and FOLDER the B images, matched by file path without extension
  (``x/0001.jpg`` pairs with ``x/0001.png``); a sample holds ``{key}.a.{ext}`` and ``{key}.b.{ext}``. A name
  on one side only is a DataError listing the unmatched names.

Every image is decoded once (split, for aligned files) to check it, as the loader will; unreadable pairs are
skipped and reported."""
from __future__ import annotations

from multiprocessing import get_context
from pathlib import Path

from ..config import ImageSpec
from .decode import DEFAULT, decode
from .images import DataError, list_images
from .paired import decode_aligned
from .shard_sets import check_shard_sets, remove_stale
from .shard_writer import SplitResult, find_splits, parse_size, sample_keys, write_samples

PAIRED_SPLIT_NAMES = ("train", "val", "test")


def _prepare_pair(job: tuple) -> tuple[str, dict | None, str | None]:
    """(key, {field: bytes}, None) of one pair, or (key, None, error). Runs in the worker processes."""
    key, path_a, path_b, spec_a, spec_b = job
    try:
        data_a = Path(path_a).read_bytes()
        ext_a = Path(path_a).suffix.lower().lstrip(".")
        if path_b is None:
            decode_aligned(data_a, path_a, spec_a, spec_b)
            return key, {f"ab.{ext_a}": data_a}, None
        data_b = Path(path_b).read_bytes()
        decode(data_a, path_a, spec_a)
        decode(data_b, path_b, spec_b)
        return key, {f"a.{ext_a}": data_a, f"b.{Path(path_b).suffix.lower().lstrip('.')}": data_b}, None
    except Exception as e:  # noqa: BLE001 -- an unreadable pair is reported, not fatal
        return key, None, str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"


def match_by_name(folder_a: Path, folder_b: Path) -> list[tuple[Path, Path]]:
    """(A file, B file) pairs of two folders matched by relative path without extension; a DataError
    listing the names found on one side only."""
    files_a, files_b = list_images(folder_a), list_images(folder_b)

    def by_stem(folder: Path, files: list[Path]) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for f in files:
            stem = f.relative_to(folder).with_suffix("").as_posix()
            if stem in out:
                raise DataError(f"{folder}: {out[stem].name} and {f.name} have the same name without extension; "
                                f"pairs are matched by it")
            out[stem] = f
        return out

    a, b = by_stem(folder_a, files_a), by_stem(folder_b, files_b)
    only_a, only_b = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    if only_a or only_b:
        def names(xs):
            return ", ".join(xs[:10]) + (f" and {len(xs) - 10} more" if len(xs) > 10 else "") if xs else "none"
        raise DataError(f"pairs are matched by file name (without extension): {len(only_a)} in {folder_a} have no "
                        f"match in {folder_b} ({names(only_a)}); {len(only_b)} in {folder_b} have none in {folder_a} "
                        f"({names(only_b)})")
    return [(a[s], b[s]) for s in sorted(a)]


def write_paired_shards(src: str | Path, out: str | Path, *, b: str | Path | None = None,
                        max_count: int | None = None, max_size: int | str | None = None, workers: int = 1,
                        prefix: str | None = None, progress: bool = True,
                        specs: dict[str, ImageSpec] | None = None, overwrite: bool = False) -> list[SplitResult]:
    """Write paired shard sets of ``src`` (aligned layout) or of ``src`` and ``b`` (matched by name)."""
    src, out = Path(src), Path(out)
    specs = specs or {}
    spec_a, spec_b = specs.get("A") or specs.get("") or DEFAULT, specs.get("B") or specs.get("") or DEFAULT
    max_count = max_count or 10**12
    max_size = parse_size(max_size)
    if max_count <= 0 or (max_size is not None and max_size <= 0):
        raise DataError("--max-count and --max-size must be positive")
    if not src.is_dir():
        raise DataError(f"source folder not found: {src}")
    if b is not None:
        b = Path(b)
        if not b.is_dir():
            raise DataError(f"--b: folder not found: {b}")
        name = prefix or src.resolve().name
        sets = [(name, src, match_by_name(src, b))]
    else:
        splits = [(p.name, p) for p in sorted(src.iterdir()) if p.is_dir() and p.name in PAIRED_SPLIT_NAMES]
        if not splits:
            if any(p.is_dir() and p.name[-1:] in "AB" and p.name[:-1] in PAIRED_SPLIT_NAMES for p in src.iterdir()):
                raise DataError(f"{src} holds trainA/ trainB/ (unpaired layout); --paired reads train/ val/ test/ of "
                                f"aligned A | B images, or two folders matched by name: cgx shards A_DIR OUT --paired --b B_DIR")
            splits = find_splits(src, prefix)
        sets = [(name, folder, [(f, None) for f in list_images(folder)]) for name, folder in splits]
    replaced = check_shard_sets(out, [name for name, _, _ in sets], overwrite)
    out.mkdir(parents=True, exist_ok=True)
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    results = []
    try:
        for name, folder, pairs in sets:
            keys = sample_keys(folder, [fa for fa, _ in pairs])
            jobs = [(k, str(fa), None if fb is None else str(fb), spec_a, spec_b) for k, (fa, fb) in zip(keys, pairs)]
            rel = [(Path(folder.name) / fa.relative_to(folder)).as_posix() for fa, _ in pairs]
            extra = {"paired": True, "layout": "aligned" if b is None else "matched",
                     "image": {"a": {"channels": spec_a.channels, "depth": spec_a.depth},
                               "b": {"channels": spec_b.channels, "depth": spec_b.depth}}}
            results.append(write_samples(name, folder, out, jobs, rel, _prepare_pair, pool=pool, progress=progress,
                                         max_count=max_count, max_size=max_size, index_fields=extra,
                                         options={"max_count": max_count, "max_size": max_size, "format": "original"}))
        remove_stale(out, replaced, results)
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
    return results
