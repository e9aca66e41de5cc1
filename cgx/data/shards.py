"""Training from WebDataset shards: domain A and domain B streamed independently, resumable exactly.

Recipe (``data`` section)::

    source: shards
    shards_a: data/h2z/trainA-{000000..000011}.tar      # brace pattern, local path, glob, or pipe:CMD
    shards_b: pipe:aws s3 cp s3://bucket/trainB-{000000..000007}.tar -
    index_b: data/h2z/trainB.json                        # needed for non-local URLs
    shuffle_buffer: 1000
    on_corrupt: skip                                     # or raise

URLs are expanded as WebDataset does (``::`` separates patterns, ``{a..b}`` braces); local paths may
also be globs. The index (JSON written by ``cgx shards``: shard names and sample counts) gives the
epoch length before anything is read; by default it is ``{dir}/{prefix}.json`` beside the first
local shard (``trainA-000000.tar`` -> ``trainA.json``). Each URL is matched to the index entry whose
name it contains.

Semantics (see ``cgx.data.shard_plan`` for the layout of the streams):

- epoch = ``max(|A|, |B|)`` samples (index counts); every rank takes
  ``steps_per_epoch = max(1, epoch // global_batch)`` steps (``global_batch = world * batch *
  accumulation``), the same everywhere, whatever the shard counts: each stream is cycled (a
  reshuffled pass) when it runs short and cut at the step count, so no rank ever waits for another
  in a collective.
- Micro-batch ``slot`` of ``rank`` is read as *virtual rank* ``rank * accumulation + slot`` of
  ``global_batch / batch`` (``worker_steps``), and each virtual rank reads one stream of the shards:
  in-epoch step ``t`` takes positions ``[t * batch, (t + 1) * batch)`` of it. So the order depends on
  neither how the global batch is split into ranks and accumulation (``docs/cluster.md``) nor the
  number of loader workers. With ``W`` workers, micro-batch ``k`` of a rank comes from worker
  ``k % W`` (the DataLoader's round robin over an IterableDataset); each worker reads its virtual
  ranks' streams through (reading, not decoding, the other workers' micro-batches) and decodes its
  own, so after a resume at step ``s`` each worker knows which position it continues from.
- Corrupt or undecodable samples (and the rest of a truncated or unreadable shard) are, with
  ``on_corrupt: skip``, logged as a warning, counted (``batch["skipped"]``, logged as
  ``data/skipped``) and replaced by the next decodable sample of the same stream; a position is
  still a position, so the stream (and a resume) is unchanged by the skip. ``on_corrupt: raise``
  stops with a DataError naming the shard and sample.
- Label maps (``data.a.labels``): each sample's ``label.png`` beside its image, decoded and checked
  (``cgx.data.label_maps``: a bad one makes the sample corrupt), cropped and flipped with the image's draws;
  batches gain ``"A_labels"`` / ``"B_labels"``. Shards whose index records no labels are refused when the
  source is built.
- A missing local shard, a URL pattern that matches nothing, a URL not in the index, a stale index
  (local shard sizes) or an empty domain is a DataError when the source is built, before the first
  step. A shard found, while reading, to hold more samples than its index says is a DataError
  (``StaleIndexError``) whatever ``on_corrupt`` says: skipping cannot stand in for samples that
  would never be read.
"""
from __future__ import annotations

import glob
import json
import logging
import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlparse
from urllib.request import url2pathname

import torch
from PIL import Image
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from ..config import DataConfig
from ..config import ImageSpec, LabelSpec
from .corrupt import skip_or_raise, stand_in
from .decode import DEFAULT, decode
from .images import DataError, decode_rgb
from .loader import HandsOutBatches
from .shard_plan import DomainPlan
from .label_maps import decode_label_map
from .trace import record, tracing
from .transforms import Augment, LabelledAugment, size_of
from .workers import ignore_stop_signals

log = logging.getLogger("cgx.data")

IMAGE_KEYS = ("jpg", "jpeg", "png", "webp", "bmp", "tif", "tiff")
INDEX_FORMAT = "cgx-shards/1"
LABEL_FIELD = "label.png"
"""A sample's label map beside its image (``{key}.label.png``; ``cgx shards`` writes it, ``cgx.data.label_maps``)."""


# --- URLs and the index ---------------------------------------------------------------------------


def is_local(url: str) -> bool:
    return not url.startswith("pipe:") and urlparse(url).scheme in ("", "file")


def local_path(url: str) -> str:
    return url2pathname(urlparse(url).path) if url.startswith("file:") else url


def expand_urls(pattern: str, key: str) -> list[str]:
    """WebDataset's expansion (``::``, ``{000..011}``), then globs for local paths."""
    from webdataset.shardlists import expand_urls as wds_expand

    urls: list[str] = []
    for url in wds_expand(pattern.strip()):
        if is_local(url) and glob.has_magic(local_path(url)):
            found = sorted(glob.glob(local_path(url)))
            if not found:
                raise DataError(f"{key}: the pattern {url!r} matches no file")
            urls += found
        else:
            urls.append(url)
    if not urls:
        raise DataError(f"{key}: {pattern!r} gives no shard URLs")
    return urls


def default_index(url: str) -> Path:
    """``dir/trainA-000003.tar`` -> ``dir/trainA.json`` (what ``cgx shards`` writes)."""
    path = Path(local_path(url))
    prefix = re.sub(r"-\d+$", "", path.name.split(".")[0])
    return path.with_name(prefix + ".json")


def read_index(path: str | Path, key: str) -> dict:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{key}: shard index not found: {path} (`cgx shards` writes it beside the shards; "
                        f"for remote or pipe: URLs name a local copy in the recipe)")
    try:
        index = json.loads(path.read_text())
        shards = {s["name"]: s for s in index["shards"]}
        bad = next((n for n, s in shards.items() if not isinstance(n, str) or not n or not isinstance(s, dict)), None)
        if bad is not None:
            raise TypeError(f"shard name {str(bad)[:40]!r} is not a file name with an entry")
    except (ValueError, KeyError, TypeError, RecursionError) as e:
        what = f"no {e}" if isinstance(e, KeyError) else str(e)[:200]
        raise DataError(f"{key}: {path} is not a shard index written by `cgx shards` ({what})") from None
    return shards


@dataclass(frozen=True)
class Domain:
    """One domain's shards: URLs and their sample counts."""

    name: str
    urls: tuple[str, ...]
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        return sum(self.counts)


def load_domain(name: str, pattern: str | None, index: str | None, key: str, index_key: str) -> Domain:
    if not pattern:
        raise DataError(f"{key} is not set (data.source=shards needs shard URLs for domain {name})")
    urls = expand_urls(pattern, key)
    given = index is not None
    if index is None:
        if not is_local(urls[0]):
            raise DataError(f"{index_key} must name the shard index (JSON from `cgx shards`) "
                            f"when the shards are not local files ({urls[0]!r})")
        index = str(default_index(urls[0]))
    entries = read_index(index, index_key if given else key)
    names = sorted(entries, key=len, reverse=True)
    counts = []
    for url in urls:
        base = os.path.basename(local_path(url)) if is_local(url) else None
        entry = entries.get(base) if base else None
        if entry is None:
            entry = next((entries[n] for n in names if n in url), None)
        if entry is None:
            raise DataError(f"{key}: shard {url!r} is not in the index {index} "
                            f"({len(entries)} shards listed; re-run `cgx shards`, or fix the pattern)")
        if is_local(url):
            path = Path(local_path(url))
            if not path.is_file():
                raise DataError(f"{key}: shard not found: {path}")
            if "bytes" in entry and path.stat().st_size != entry["bytes"]:  # a malformed value differs too
                raise DataError(f"{key}: {path} has {path.stat().st_size} bytes, the index {index} says "
                                f"{entry['bytes']}: the index is stale (re-run `cgx shards`)")
        count = index_count(entry, index, url, key)
        if is_local(url):
            check_count_fits(Path(local_path(url)), count, index, key)
        counts.append(count)
    domain = Domain(name, tuple(urls), tuple(counts))
    if domain.total == 0:
        raise DataError(f"{key}: domain {name} is empty (0 samples in {len(urls)} shards per {index})")
    return domain


def index_count(entry, index: str, url: str, key: str) -> int:
    """The sample count of ``url``'s index entry: a non-negative integer, or a DataError naming both."""
    count = entry.get("count") if isinstance(entry, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or count < 0:
        got = "no count" if count is None else f"count {str(count)[:40]!r}"
        raise DataError(f"{key}: the index {index} gives shard {url!r} {got}; a count must be an integer >= 0 "
                        f"(re-run `cgx shards`)")
    return count


TAR_BLOCK = 512
GZIP_MAX_RATIO = 1032
"""deflate's largest expansion: no gzip file of n bytes decompresses to more than about 1032 n."""


def check_count_fits(path: Path, count: int, index: str, key: str) -> None:
    """An index count the shard cannot hold is refused before it is trusted: every sample takes at
    least one 512-byte tar header (and a gzipped tar decompresses to at most 1032 times its size)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    most = size * (GZIP_MAX_RATIO if gzipped else 1) // TAR_BLOCK
    if count > most:
        raise DataError(f"{key}: the index {index} says {path} holds {count} samples, but a "
                        f"{'gzipped ' if gzipped else ''}tar of {size} bytes holds at most {most}: the index is "
                        f"wrong or stale (re-run `cgx shards`)")


# --- reading shards --------------------------------------------------------------------------------


@dataclass
class Broken:
    """A sample position that could not be read (truncated or unreadable shard)."""

    url: str
    index: int
    reason: str


class StaleIndexError(DataError):
    """A shard holds more samples than its index says: reading on would silently drop the rest."""


@dataclass(frozen=True)
class Oversize:
    """A sample's file larger than ``data.max_sample_bytes``: skipped over in the tar, never read."""

    name: str
    size: int
    limit: int

    def error(self) -> DataError:
        return DataError(f"{self.name} is {self.size} bytes, above data.max_sample_bytes={self.limit}")


def tar_members(fileobj, max_bytes: int | None) -> Iterator[dict]:
    """The regular files of a tar stream as ``{"fname", "data"}`` (WebDataset's tar_file_iterator, less
    its error handler), a file over ``max_bytes`` as ``data=Oversize(...)`` without reading it."""
    import tarfile

    stream = tarfile.open(fileobj=fileobj, mode="r|*")
    for info in stream:
        name = info.name
        if not info.isreg() or not name or re.match(r"__[^/]*__($|/)", name):
            continue
        if "/" not in name and name.startswith("__") and name.endswith("__"):
            continue
        if max_bytes is not None and info.size > max_bytes:
            yield {"fname": name, "data": Oversize(name, info.size, max_bytes)}
        else:
            yield {"fname": name, "data": stream.extractfile(info).read()}
        stream.members = []


def read_shard(url: str, start: int, stop: int, count: int | None = None,
               max_bytes: int | None = DataConfig.max_sample_bytes) -> Iterator[dict | Broken]:
    """Samples ``start..stop-1`` of one shard as WebDataset groups them ({"__key__", "jpg": bytes, ...}).

    Earlier samples are read past without decoding. Whatever cannot be read (a shard that does not
    open, a truncated tar, fewer samples than the index says) comes out as ``Broken`` positions, so
    that the caller always gets ``stop - start`` items. ``count`` is the shard's sample count in the
    index: a read that reaches it checks that the tar ends there, and raises StaleIndexError (whatever
    ``data.on_corrupt`` says: no sample is corrupt, the index is wrong) if it holds more. A file over
    ``max_bytes`` is skipped over unread and comes out as ``Oversize`` (a corrupt sample to the caller)."""
    from webdataset.gopen import gopen
    from webdataset.tariterators import group_by_keys

    i = 0
    stream = None
    check_present(url)
    try:
        stream = gopen(url, "rb")
        files = ({**f, "__url__": url} for f in tar_members(stream, max_bytes))
        samples = group_by_keys(files)
        for sample in samples:
            if i >= stop:
                break
            if i + 1 == stop == count:  # the last sample the index knows of: is it the tar's last?
                _check_ends(url, count, samples)
            if i >= start:
                yield sample
            i += 1
        else:
            if i < stop:
                reason = (f"the shard ends after {i} samples, its index says {count}" if count is not None
                          else f"the shard holds {i} samples, the index says at least {stop}")
                for j in range(max(i, start), stop):
                    yield Broken(url, j, reason + " (a truncated shard or a stale index: re-run `cgx shards`)")
                i = stop
    except StaleIndexError:
        raise
    except Exception as e:  # noqa: BLE001 -- any read failure becomes broken positions
        check_present(url)  # unless the shard is gone: named, not counted as corrupt
        reason = f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
        for j in range(max(i, start), stop):
            yield Broken(url, j, reason)
    finally:
        if stream is not None:
            try:
                stream.close()
            except Exception:  # noqa: BLE001 -- a pipe closed early may exit non-zero
                pass


def check_present(url: str) -> None:
    """A local shard that is gone (deleted or moved while training) is a DataError naming it, whatever
    ``data.on_corrupt`` says: its samples are not corrupt, and skipping them all would train on less."""
    if is_local(url) and not os.path.exists(local_path(url)):
        raise DataError(f"shard {local_path(url)} is missing (deleted or moved while training?); "
                        f"restore it, or re-run `cgx shards` and start again")


def _check_ends(url: str, count: int, rest: Iterator[dict]) -> None:
    """Raise StaleIndexError if ``rest`` (the samples after the index's last one) is not empty."""
    try:
        extra = sum(1 for _ in rest)
    except Exception:  # noqa: BLE001 -- a damaged tail is not a count mismatch; the samples read are good
        return
    if extra:
        raise StaleIndexError(f"shard {url} holds {count + extra} samples, its index says {count}: the index "
                              f"is stale and {extra} samples would never be read (re-run `cgx shards`)")


def sample_image(sample: dict, spec: ImageSpec = DEFAULT):
    """The sample's image decoded for a domain of ``spec`` (``cgx.data.decode``: for the default spec
    8-bit RGB as ``cgx.data.images.to_rgb`` makes every image, else a float tensor). A file over
    ``data.max_sample_bytes`` (``Oversize``, never read) is a DataError naming it."""
    ext = next((k for k in IMAGE_KEYS if k in sample), None)
    if ext is None:
        raise ValueError(f"no image in the sample (it has {', '.join(k for k in sample if not k.startswith('__'))})")
    if isinstance(sample[ext], Oversize):
        raise sample[ext].error()
    return decode(sample[ext], f"{sample['__key__']}.{ext}", spec)


def sample_labels(sample: dict, spec: LabelSpec, size: tuple[int, int], key: str):
    """The sample's label map (``label.png``, ``cgx.data.label_maps``), checked against ``spec`` and its
    image's ``size``; a DataError naming the sample when it has none or it is not a valid one."""
    name = f"{sample['__key__']}.{LABEL_FIELD}"
    data = sample.get(LABEL_FIELD)
    if data is None:
        raise DataError(f"sample {sample['__key__']!r} has no {LABEL_FIELD} ({key} asks for label maps)")
    if isinstance(data, Oversize):
        raise data.error()
    return decode_label_map(data, name, spec, size, key)


def check_index_labels(pattern: str | None, index: str | None, spec: ImageSpec, key: str, spec_key: str) -> None:
    """A DataError naming the index when ``spec`` asks for label maps (``data.a.labels``) and the shards were
    written without them (`cgx shards` writes label.png where {split}_labels/ is beside the split)."""
    if not pattern or spec.labels is None:
        return
    found = local_index(pattern, index, key)
    if found is None:
        return  # remote shards without a local index, or a missing index (load_domain names it)
    path, record = found
    if not (isinstance(record, dict) and isinstance(record.get("labels"), dict)):
        raise DataError(f"{key}: {spec_key}.labels asks for label maps, and the shards of {path} hold none: re-run "
                        f"`cgx shards` with the label maps in {{split}}_labels/ beside each split folder "
                        f"(trainA_labels/ beside trainA/), or set {spec_key}.labels to null")


def index_spec(index: dict) -> ImageSpec | None:
    """The image spec an index records (``cgx shards --channels/--depth``); None for an index written
    before specs were recorded (its images were checked as 8-bit RGB)."""
    image = index.get("image")
    if not isinstance(image, dict):
        return None
    return ImageSpec(channels=image.get("channels"), depth=image.get("depth"))


def index_json(path: Path):
    """An index file's JSON, or None when it cannot be read or parsed (hostile nesting included): for
    the checks that leave naming a missing or malformed index to ``read_index``."""
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):
        return None


def local_index(pattern: str, index: str | None, key: str) -> tuple[Path, object] | None:
    """The index of the shards ``pattern`` (``index``, else the one beside the first local shard) and its
    JSON; None where there is none to read here (remote shards) or it is missing or malformed (which
    load_domain names)."""
    path = Path(index) if index is not None else None
    if path is None:
        urls = expand_urls(pattern, key)
        if not is_local(urls[0]):
            return None
        path = default_index(urls[0])
    record = index_json(path)
    return None if record is None else (path, record)


def check_index_spec(pattern: str | None, index: str | None, spec: ImageSpec, key: str, spec_key: str) -> None:
    """A DataError naming the index and both specs when domain shards were written for another image spec
    than the recipe's ``spec`` (data.a / data.b). Indexes without a spec pass for the default spec only."""
    if not pattern:
        return
    found = local_index(pattern, index, key)
    if found is None:
        return  # load_domain names a missing or malformed index
    path, record = found
    try:
        recorded = index_spec(record)
    except (ValueError, AttributeError, TypeError):
        return
    if isinstance(record, dict) and record.get("paired") is True:
        raise DataError(f"{key}: {path} indexes paired shards (`cgx shards --paired`: both images in each sample); "
                        f"set data.paired=true and name them in data.shards")
    if recorded is None:
        if not spec.is_default:
            raise DataError(f"{key}: the index {path} records no image spec (written for 8-bit RGB), {spec_key} is "
                            f"{spec.describe()} (channels {spec.channels}, depth {spec.depth}): re-run "
                            f"`cgx shards ... --channels {spec.channels} --depth {spec.depth}`")
        return
    if (recorded.channels, recorded.depth) != (spec.channels, spec.depth):
        raise DataError(f"{key}: the shards of {path} were written for {recorded.describe()} images (channels "
                        f"{recorded.channels}, depth {recorded.depth}), {spec_key} is {spec.describe()} (channels "
                        f"{spec.channels}, depth {spec.depth}): set {spec_key} to match, or re-run `cgx shards` "
                        f"with --channels {spec.channels} --depth {spec.depth}")


@dataclass
class _Read:
    """One position of a stream, read ahead: its raw sample, then the decoded image or why not."""

    pos: int
    raw: dict | Broken
    image: object = None
    error: str | None = None
    decoded: bool = False


class _Stream:
    """One domain's stream for one (virtual) rank in one epoch, from a position on: decoded images."""

    def __init__(self, domain: Domain, plan: DomainPlan, epoch: int, stream: int, start: int,
                 augment: Augment, on_corrupt: str, max_bytes: int | None = DataConfig.max_sample_bytes,
                 spec: ImageSpec = DEFAULT) -> None:
        self.spec = spec
        self.domain, self.plan, self.epoch, self.stream = domain, plan, epoch, stream
        self.max_bytes = max_bytes
        self.augment, self.on_corrupt = augment, on_corrupt
        self.pos = start
        self.raw = self._raw(start)
        self.ahead: deque[_Read] = deque()

    def close(self) -> None:
        self.raw.close()

    def _raw(self, start: int) -> Iterator[tuple[int, dict | Broken]]:
        plan, e, u = self.plan, self.epoch, self.stream
        n, w = plan.pass_length(e, u), plan.window_size
        p, o = divmod(start, n)
        pos = start
        while True:
            window = o // w
            reader = self._read_parts(p, window * w)
            try:
                while window * w < n:
                    first, size = window * w, min(w, n - window * w)
                    raw = [next(reader) for _ in range(size)]
                    order = plan.window_order(e, u, p, window, size)
                    for i in range(o - first, size):
                        yield pos, raw[order[i]]
                        pos += 1
                    window, o = window + 1, first + size
            finally:
                reader.close()
            p, o = p + 1, 0

    def _read_parts(self, pass_: int, skip: int) -> Iterator[dict | Broken]:
        """The raw samples of one pass of this stream, from raw index ``skip`` on."""
        for part in self.plan.parts(self.epoch, self.stream, pass_):
            if skip >= len(part):
                skip -= len(part)
                continue
            yield from read_shard(self.domain.urls[part.shard], part.start + skip, part.stop,
                                  self.domain.counts[part.shard], self.max_bytes)
            skip = 0

    def decode(self, raw: dict):
        """A raw sample's image for the domain's spec (paired streams decode two: ``cgx.data.paired``); for a
        domain with labels (``data.a.labels``) the image and its label map (``sample_labels``)."""
        image = sample_image(raw, self.spec)
        if self.spec.labels is None:
            return image
        return image, sample_labels(raw, self.spec.labels, size_of(image), f"data.{self.domain.name.lower()}.labels")

    def _entry(self, k: int) -> _Read:
        """The k-th item read ahead (reading more as needed), decoded."""
        while len(self.ahead) <= k:
            pos, raw = next(self.raw)
            self.ahead.append(_Read(pos, raw))
        entry = self.ahead[k]
        if not entry.decoded:
            entry.decoded = True
            raw = entry.raw
            if isinstance(raw, Broken):
                entry.error = f"sample {raw.index} of {raw.url}: {raw.reason}"
            else:
                try:
                    entry.image = self.decode(raw)
                except Exception as e:  # noqa: BLE001 -- PIL raises many kinds
                    why = str(e) if isinstance(e, DataError) else f"{type(e).__name__}: {e}"
                    entry.error = f"sample {raw['__key__']!r} of {raw['__url__']}: {why}"
        return entry

    def skip_to(self, pos: int) -> None:
        """Go on to position ``pos`` (at or after this one), reading but not decoding the positions between:
        another loader worker's micro-batches of the same stream."""
        while self.pos < pos:
            if self.ahead:
                self.ahead.popleft()
            else:
                next(self.raw)
            self.pos += 1

    def take(self) -> tuple[torch.Tensor, str, bool]:
        """The augmented image at the next position, its key, and whether that position was corrupt."""
        pos = self.pos
        entry = self._entry(0)
        assert entry.pos == pos
        corrupt = entry.error is not None
        if corrupt:  # the next decodable sample of the stream stands in (cgx.data.corrupt)
            skip_or_raise(self.on_corrupt, f"domain {self.domain.name}: corrupt {entry.error}")
            limit = self.plan.pass_length(self.epoch, self.stream) + 1
            entry = stand_in(lambda k: e if (e := self._entry(k)).error is None else None, limit,
                             lambda: f"domain {self.domain.name}: no decodable sample in a whole pass of stream "
                                     f"{self.stream} (epoch {self.epoch}); last error: {self.ahead[-1].error}")
        image, key = entry.image, entry.raw["__key__"]
        self.ahead.popleft()
        self.pos += 1
        gen = torch.Generator().manual_seed(self.plan.augment_seed(self.epoch, self.stream, pos))
        try:
            return self.augment(image, gen), key, corrupt
        except DataError as e:
            raise DataError(f"domain {self.domain.name}: sample {key!r} of {entry.raw['__url__']}: {e}") from None


def worker_steps(src, start: int, stop: int | None) -> Iterator[tuple[int, int, int, int]]:
    """This DataLoader worker's micro-batches of steps ``start .. stop - 1`` (every ``workers``-th of the
    rank's sequence of ``accumulation`` micro-batches per step: each worker yields whole micro-batches),
    as (step, epoch, stream, first position of the micro-batch in that stream): the plan both shard
    sources (``ShardSource``, ``cgx.data.paired.PairedShardSource``) follow.

    Micro-batch ``slot`` of ``rank`` is read by the *virtual rank* ``v = rank * accumulation + slot`` of
    ``world * accumulation`` (= global batch / micro-batch), from its stream ``v``: in-epoch step ``t``
    takes positions ``t * batch ..`` of it. So the streams, and which step reads what, depend on the
    global batch and the micro-batch only: not on how the global batch is split into ranks and
    accumulation slots, nor on ``data.workers``."""
    info = get_worker_info()
    worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
    if workers != src.workers:
        raise RuntimeError(f"{type(src).__name__} planned for {src.workers} loader workers runs in {workers}")
    k = getattr(src, "accumulation", 1)
    i = start * k + worker
    while stop is None or i < stop * k:
        step, slot = divmod(i, k)
        epoch, t = divmod(step, src.steps_per_epoch)
        yield step, epoch, src.rank * k + slot, t * src.batch
        i += workers


def stream_at(stream, epoch: int, u: int, first: int, open_stream):
    """``stream`` moved on to position ``first`` of stream ``u`` in ``epoch`` if it stands at or before it
    (``skip_to``: the positions between are other workers' micro-batches), else it is closed and
    ``open_stream()`` (a stream opened there) takes its place."""
    if stream is not None and (stream.epoch, stream.stream) == (epoch, u) and stream.pos <= first:
        stream.skip_to(first)
        return stream
    if stream is not None:
        stream.close()
    return open_stream()


class OpenStreams:
    """A worker's open streams, one per (name, stream): with accumulation a worker reads the streams of
    several virtual ranks in turn, each continuing where it stood (``stream_at``)."""

    def __init__(self) -> None:
        self.open: dict = {}

    def at(self, name: str, epoch: int, u: int, first: int, open_stream):
        self.open[name, u] = stream_at(self.open.get((name, u)), epoch, u, first, open_stream)
        return self.open[name, u]

    def close(self) -> None:
        for s in self.open.values():
            s.close()
        self.open.clear()


class ShardBatches(IterableDataset):
    """One rank's batches for steps ``start..stop-1``; each DataLoader worker yields whole batches."""

    def __init__(self, source: "ShardSource", start: int, stop: int | None) -> None:
        self.source, self.start, self.stop = source, start, stop

    def __iter__(self) -> Iterator[dict]:
        src = self.source
        streams = OpenStreams()
        trace = tracing()
        try:
            for step, epoch, u, first in worker_steps(src, self.start, self.stop):
                out: dict = {"skipped": 0, "keys": {}}
                records = [{"epoch": epoch, "pos": f"{u}:{first + i}"} for i in range(src.batch)] if trace else None
                for name in ("A", "B"):
                    labelled = src.specs[name].labels is not None
                    augment = LabelledAugment(src.augment) if labelled else src.augment
                    s = streams.at(name, epoch, u, first, lambda name=name: _Stream(
                        src.domains[name], src.plans[name], epoch, u, first, augment, src.on_corrupt,
                        src.max_sample_bytes, src.specs[name]))
                    images, labels, keys = [], [], []
                    for i in range(src.batch):
                        x, key, corrupt = s.take()
                        if labelled:  # (image, label map), augmented with one set of draws
                            x, y = x
                            labels.append(y)
                        images.append(x)
                        keys.append(key)
                        out["skipped"] += corrupt
                        if records is not None:
                            records[i][name] = record(key, x, src.plans[name].augment_seed(epoch, u, first + i))
                    out[name] = torch.stack(images)
                    if labelled:
                        out[f"{name}_labels"] = torch.stack(labels)
                    out["keys"][name] = keys
                out["step"] = step
                if records is not None:
                    out["trace"] = records
                yield out
        finally:
            streams.close()


class ShardSource(HandsOutBatches):
    """The data source of ``data.source: shards`` (same interface as the folder source)."""

    def __init__(self, cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 shuffle: bool = True, accumulation: int = 1) -> None:
        self.specs = {"A": cfg.a, "B": cfg.b}
        check_index_spec(cfg.shards_a, cfg.index_a, cfg.a, "data.shards_a", "data.a")
        check_index_spec(cfg.shards_b, cfg.index_b, cfg.b, "data.shards_b", "data.b")
        check_index_labels(cfg.shards_a, cfg.index_a, cfg.a, "data.shards_a", "data.a")
        check_index_labels(cfg.shards_b, cfg.index_b, cfg.b, "data.shards_b", "data.b")
        self.domains = {
            "A": load_domain("A", cfg.shards_a, cfg.index_a, "data.shards_a", "data.index_a"),
            "B": load_domain("B", cfg.shards_b, cfg.index_b, "data.shards_b", "data.index_b"),
        }
        self.rank, self.world, self.batch, self.accumulation = rank, world, batch, accumulation
        self.workers = max(1, cfg.workers)
        self.loader_workers = cfg.workers
        self.plans = {  # one stream per virtual rank: see worker_steps
            name: DomainPlan(d.counts, world * accumulation, seed, 1 if name == "A" else 2,
                             cfg.shuffle_buffer, shuffle)
            for name, d in self.domains.items()
        }
        self.augment = Augment(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip)
        self.on_corrupt = cfg.on_corrupt
        self.max_sample_bytes = cfg.max_sample_bytes
        self.epoch_length = max(d.total for d in self.domains.values())
        self.steps_per_epoch = max(1, self.epoch_length // (world * batch * accumulation))

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        """Batches ``{"A", "B", "skipped", "keys", "step"}`` of this rank from ``start_step`` on."""
        loader = DataLoader(
            ShardBatches(self, start_step, stop_step),
            batch_size=None,
            num_workers=self.loader_workers,
            persistent_workers=False,
            prefetch_factor=2 if self.loader_workers else None,
            worker_init_fn=ignore_stop_signals,
            pin_memory=torch.cuda.is_available(),
            # Its own generator: a DataLoader otherwise draws its base seed from torch's global one,
            # and a resumed run (which makes its loader after restoring the RNG) would then draw
            # differently from an uninterrupted one in the step (dropout, CUT's patch sampling).
            # The samples' augmentation is seeded by their position, not by the workers' seeds.
            generator=torch.Generator().manual_seed(0),
        )
        return self._hand_out(loader)
