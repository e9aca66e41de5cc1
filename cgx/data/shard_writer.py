"""``cgx shards SRC OUT``: images -> WebDataset tar shards plus a JSON index, deterministically.

SRC is a folder in the authors' layout (``trainA/ trainB/ testA/ testB/``, also ``valA/ valB/``:
one shard set per split, ``OUT/trainA-000000.tar ...`` and ``OUT/trainA.json``) or one plain folder
of images (recursive; ``OUT/{prefix}-000000.tar``, prefix defaults to the folder's name).

- Images are taken in sorted order; a sample is ``{key}.{ext}`` where the key is the image's path
  relative to its split folder without the extension (dots in the file name become ``_``, since
  WebDataset splits keys at the first dot; duplicates get ``_2``, ``_3``...).
- By default the original bytes are stored (no re-encode; every image is decoded once to check
  it). ``resize`` (shorter side, bicubic) and/or ``fmt`` re-encode instead.
- Shards roll over at ``max_count`` samples or before ``max_size`` bytes of image data
  (a single larger image gets a shard of its own). Written with ``webdataset.ShardWriter``
  into a hidden ``.NAME.partial`` file that is renamed to its final name only once complete, so
  a final name never holds a half-written shard; the index is written last, the same way.
- Tar headers are fixed (mtime 0, owner, mode), so the same input and options give byte-identical
  shards and index, whatever the number of worker processes.
- Unreadable images are skipped and reported (count and names) at the end and in the index.
- Label maps (``cgx.data.label_maps``): a split folder with ``{split}_labels/`` beside it (``trainA_labels/``)
  gets each image's label map as ``{key}.label.png`` in its sample (its bytes as they are; resized
  nearest-neighbour with ``resize``), and the index records ``"labels"``. An image without a label map
  stops the command (named); a label map that is not one, or not its image's size, skips the sample.

Index (``OUT/{name}.json``)::

    {"format": "cgx-shards/1", "name": "trainA", "total": 1067,
     "shards": [{"name": "trainA-000000.tar", "count": 1000, "bytes": 20183040}, ...],
     "skipped": ["bad/img_0003.jpg"], "options": {...}}
"""
from __future__ import annotations

import io
import json
import os
import re
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from PIL import Image

from ..config import ImageSpec
from .decode import DEFAULT, decode, image_size
from .images import DataError, list_images
from .label_maps import check_label_file, label_files, labels_folder
from .shard_sets import check_shard_sets, remove_stale
from .shards import INDEX_FORMAT, LABEL_FIELD
from ..safe_text import shown

SPLIT_RE = re.compile(r"^(train|test|val)[AB]$")
FORMATS = {"jpg": "JPEG", "png": "PNG", "webp": "WEBP"}
UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "ki": 2**10, "mi": 2**20, "gi": 2**30, "ti": 2**40}


def parse_size(text: str | int | None) -> int | None:
    """``500MB``, ``1GiB``, ``2e9``, ``123456`` -> bytes."""
    if text is None or isinstance(text, int):
        return text
    m = re.fullmatch(r"\s*([0-9.eE+]+)\s*([kKmMgGtT]i?)?[bB]?\s*", str(text))
    if not m:
        raise DataError(f"cannot read the size {text!r} (e.g. 500MB, 1GiB, 2e9)")
    return int(float(m.group(1)) * UNITS[(m.group(2) or "").lower()])


@dataclass
class SplitResult:
    name: str
    shards: list[dict] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    index: Path | None = None

    @property
    def total(self) -> int:
        return sum(s["count"] for s in self.shards)

    def pattern(self, out: Path) -> str:
        n = len(self.shards)
        if n == 1:
            return str(out / self.shards[0]["name"])
        return str(out / f"{self.name}-{{{0:06d}..{n - 1:06d}}}.tar")


def find_splits(src: Path, prefix: str | None) -> list[tuple[str, Path]]:
    """(name, folder) of each shard set to write."""
    if not src.is_dir():
        raise DataError(f"source folder not found: {src}")
    splits = sorted((p.name, p) for p in src.iterdir() if p.is_dir() and SPLIT_RE.match(p.name))
    if splits:
        return splits
    name = prefix or src.resolve().name
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_-]*", name) or re.search(r"-\d+$", name):
        raise DataError(f"shard prefix {name!r} must be letters, digits, _ and - (not ending in -NUMBER); "
                        f"give one with --prefix")
    return [(name, src)]


def sample_keys(folder: Path, files: list[Path]) -> list[str]:
    """Unique WebDataset keys: relative path without extension, dots in the name replaced."""
    keys, seen = [], set()
    for f in files:
        rel = f.relative_to(folder).with_suffix("")
        key = (rel.parent / rel.name.replace(".", "_")).as_posix()
        unique, n = key, 1
        while unique in seen:
            n += 1
            unique = f"{key}_{n}"
        seen.add(unique)
        keys.append(unique)
    return keys


def _prepare(job: tuple) -> tuple[str, str | None, bytes | str]:
    """(key, ext, bytes) of one image, or (key, None, error). Runs in the worker processes."""
    path, key, resize, fmt, quality, spec = job
    try:
        data = Path(path).read_bytes()
        image = decode(data, path, spec)  # the loader's decode for the domain's spec: fails here, not in training
        if resize is None and fmt is None:
            ext = Path(path).suffix.lower().lstrip(".")
            return key, ext, data
        if resize is not None:
            w, h = image.size
            s = resize / min(w, h)
            image = image.resize((max(1, round(w * s)), max(1, round(h * s))), Image.BICUBIC)
        fmt = fmt or "jpg"
        buf = io.BytesIO()
        options = {"quality": quality} if fmt in ("jpg", "webp") else {}
        image.save(buf, FORMATS[fmt], **options)
        return key, fmt, buf.getvalue()
    except Exception as e:  # noqa: BLE001 -- any unreadable image is reported, not fatal
        return key, None, str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"


class _AtomicShards:
    """Opener and post-hook for ShardWriter: write ``.NAME.partial``, rename to NAME when complete."""

    def __init__(self) -> None:
        self.open_files: dict[str, object] = {}
        self.done: list[dict] = []

    @staticmethod
    def partial(fname: str) -> str:
        d, n = os.path.split(fname)
        return os.path.join(d, f".{n}.partial")

    def opener(self, fname: str):
        f = open(self.partial(fname), "wb")
        self.open_files[fname] = f
        return f

    def post(self, fname: str) -> None:
        f = self.open_files.pop(fname)
        f.flush()
        os.fsync(f.fileno())
        f.close()
        os.replace(self.partial(fname), fname)
        self.done.append({"name": os.path.basename(fname), "bytes": os.path.getsize(fname)})

    def abandon(self) -> None:
        for fname, f in self.open_files.items():
            f.close()
            Path(self.partial(fname)).unlink(missing_ok=True)
        self.open_files.clear()


def _prepare_fields(job: tuple) -> tuple[str, dict | None, str | None]:
    """``_prepare`` as ``write_samples`` takes it: (key, {ext: bytes}, None) or (key, None, error)."""
    key, ext, payload = _prepare(job)
    return (key, None, payload) if ext is None else (key, {ext: payload}, None)




def _prepare_labelled(job: tuple) -> tuple[str, dict | None, str | None]:
    """``_prepare_fields`` of an image and its label map (``job[-1]``): the label map's bytes as they are
    (resized nearest-neighbour with the image under --resize), checked to be a label map the image's size."""
    *image_job, label = job
    key, fields, error = _prepare_fields(tuple(image_job))
    if fields is None:
        return key, None, error
    try:
        data = Path(label).read_bytes()
        original = image_size(image_job[0])
        check_label_file(data, label, original)
        size, resize = original, image_job[2]
        if resize is not None:  # as _prepare resizes the image
            s = resize / min(original)
            size = (max(1, round(original[0] * s)), max(1, round(original[1] * s)))
        if size != original:
            with Image.open(io.BytesIO(data)) as lbl:
                buf = io.BytesIO()
                lbl.resize(size, Image.NEAREST).save(buf, format="PNG")
                data = buf.getvalue()
        return key, {**fields, LABEL_FIELD: data}, None
    except OSError as e:
        return key, None, f"cannot read label map {label}: {e.strerror or e}"
    except DataError as e:
        return key, None, str(e)


def write_split(name: str, folder: Path, out: Path, *, max_count: int, max_size: int | None, resize: int | None,
                fmt: str | None, quality: int, pool, progress: bool, spec: ImageSpec = DEFAULT) -> SplitResult:
    files = list_images(folder)
    keys = sample_keys(folder, files)
    jobs = [(str(f), k, resize, fmt, quality, spec) for f, k in zip(files, keys)]
    rel = [(Path(folder.name) / f.relative_to(folder)).as_posix() for f in files]
    options = {"max_count": max_count, "max_size": max_size, "resize": resize,
               "format": fmt if (fmt or resize) else "original", "quality": quality if (fmt or resize) else None}
    index_fields: dict = {"image": {"channels": spec.channels, "depth": spec.depth}}
    prepare = _prepare_fields
    labels = labels_folder(folder)
    if SPLIT_RE.match(name) and labels.is_dir():  # trainA_labels/ beside trainA/: label.png in every sample
        jobs = [(*job, str(p)) for job, p in zip(jobs, label_files(files, folder, labels, f"{labels.name}/"))]
        prepare, index_fields["labels"] = _prepare_labelled, {"field": LABEL_FIELD, "source": labels.name}
    return write_samples(name, folder, out, jobs, rel, prepare, pool=pool, progress=progress,
                         max_count=max_count, max_size=max_size, index_fields=index_fields, options=options)


def write_samples(name: str, folder: Path, out: Path, jobs: list, names: list[str], prepare, *, pool, progress: bool,
                  max_count: int, max_size: int | None, index_fields: dict, options: dict) -> SplitResult:
    """One shard set and its index from ``jobs``: ``prepare(job)`` gives (key, {field: bytes}, None) or
    (key, None, error); ``names[i]`` is how job i is reported when skipped. ``index_fields`` join the index."""
    import webdataset as wds
    from tqdm import tqdm

    results = pool.imap(prepare, jobs, chunksize=4) if pool is not None else map(prepare, jobs)
    result = SplitResult(name)
    atomic = _AtomicShards()
    counts: list[int] = []
    writer = None
    pattern = str(out / name).replace("%", "%%") + "-%06d.tar"
    try:
        bar = tqdm(results, total=len(jobs), desc=name, unit="img", disable=not progress)
        for i, (key, fields, error) in enumerate(bar):
            if fields is None:
                result.skipped.append((names[i], error))
                continue
            size = sum(len(v) for v in fields.values())
            if writer is None:  # opened on the first good image, so no empty shard is ever written
                writer = wds.ShardWriter(pattern, maxcount=max_count, maxsize=float("inf"), verbose=0,
                                         opener=atomic.opener, post=atomic.post, encoder=False,
                                         mtime=0, format="PAX_FORMAT")
                counts.append(0)
            elif writer.count >= max_count or (max_size is not None and writer.count
                                               and writer.size + size > max_size):
                writer.next_stream()
                counts.append(0)
            writer.write({"__key__": key, **fields})
            counts[-1] += 1
        if writer is not None:
            writer.close()
    except BaseException:
        if writer is not None and getattr(writer, "tarstream", None) is not None:
            try:
                writer.tarstream.close()  # into the temporary file, which is then removed
            except Exception:  # noqa: BLE001
                pass
        atomic.abandon()
        raise
    result.shards = [{**d, "count": c} for d, c in zip(atomic.done, counts)]
    if not result.shards:
        first, why = result.skipped[0]
        more = f" (and {len(result.skipped) - 1} more)" if len(result.skipped) > 1 else ""
        raise DataError(f"{folder}: none of its {len(jobs)} images could be read: {first}: {why}{more}")
    index = {
        "format": INDEX_FORMAT,
        "name": name,
        "total": result.total,
        "shards": result.shards,
        "skipped": [p for p, _ in result.skipped],
        **index_fields,
        "options": options,
    }
    result.index = out / f"{name}.json"
    tmp = out / f".{name}.json.partial"
    tmp.write_text(json.dumps(index, indent=1) + "\n")
    os.replace(tmp, result.index)
    return result


def write_shards(src: str | Path, out: str | Path, *, max_count: int | None = None, max_size: int | str | None = None,
                 resize: int | None = None, fmt: str | None = None, quality: int = 95, workers: int = 1,
                 prefix: str | None = None, progress: bool = True,
                 specs: dict[str, ImageSpec] | None = None, overwrite: bool = False) -> list[SplitResult]:
    """Write one shard set (tar shards + index) per split of ``src`` into ``out`` (an existing set only
    with ``overwrite``, and only one cgx wrote: ``cgx.data.shard_sets``). ``specs``: the image
    spec each domain's images are checked against and the index records: ``{"A": ..., "B": ...}`` for
    the authors' layout, ``{"": ...}`` (or either) for a plain folder; default 8-bit RGB."""
    src, out = Path(src), Path(out)
    max_count = max_count or 10**12
    max_size = parse_size(max_size)
    if max_count <= 0 or (max_size is not None and max_size <= 0):
        raise DataError("--max-count and --max-size must be positive")
    if fmt is not None and fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    if resize is not None and resize <= 0:
        raise DataError(f"--resize must be positive, got {resize}")
    splits = find_splits(src, prefix)
    chosen = {name: split_spec(name, specs) for name, _ in splits}
    if resize is not None or fmt is not None:
        for name, spec in chosen.items():
            if not spec.is_default:
                raise DataError(f"--resize and --format re-encode to 8-bit RGB; {name} is {spec.describe()}: "
                                f"keep its original bytes (no --resize/--format), training resizes as data.load_size says")
    replaced = check_shard_sets(out, chosen, overwrite)
    out.mkdir(parents=True, exist_ok=True)
    pool = get_context("fork").Pool(workers) if workers > 1 else None
    try:
        results = [write_split(name, folder, out, max_count=max_count, max_size=max_size, resize=resize, fmt=fmt,
                               quality=quality, pool=pool, progress=progress, spec=chosen[name])
                   for name, folder in splits]
        remove_stale(out, replaced, results)
        return results
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()


def split_spec(name: str, specs: dict[str, ImageSpec] | None) -> ImageSpec:
    """The spec of split ``name`` (``trainA`` -> specs["A"]; a plain folder -> specs[""])."""
    if not specs:
        return DEFAULT
    domain = name[-1] if SPLIT_RE.match(name) else ""
    return specs.get(domain) or specs.get("") or DEFAULT


def report(results: list[SplitResult], out: str | Path) -> str:
    out = Path(out)
    lines = []
    for r in results:
        size = sum(s["bytes"] for s in r.shards) / 1e6
        lines.append(f"{shown(r.name)}: {r.total} images in {len(r.shards)} shards ({size:.1f} MB): "
                     f"{r.pattern(out)}  (index {r.index})")
    skipped = [(p, e) for r in results for p, e in r.skipped]
    if skipped:
        lines.append(f"skipped {len(skipped)} unreadable images:")
        lines += [f"  {shown(p)}: {shown(e)}" for p, e in skipped]
    return "\n".join(lines)
