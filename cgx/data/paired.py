"""Paired data (``data.paired: true``): each sample is an image of domain A and the image of domain B it
corresponds to, as pix2pix (Isola et al. 2017) trains on.

- **Aligned images** (the authors' ``aligned`` dataset mode): one file holds A | B side by side; it is split
  down the middle, A the left half, B the right. Folders ``{root}/train/``, ``val/``, ``test/``.
- **Paired shards** (``cgx shards --paired``): a sample holds either the aligned file as it was
  (``{key}.ab.{ext}``: the original bytes, split when read) or two files (``{key}.a.{ext}``,
  ``{key}.b.{ext}``: from two folders matched by file name).
- **Joint augmentation** (``JointAugment``): both images are resized as ``data.load_size`` says, then ONE
  crop position and ONE flip are drawn and applied to both, so their pixels stay aligned. The draws are
  the unpaired augmentation's (crop left, crop top, flip: the same generator calls in the same order).
- **Resume**: a pair takes the place of a sample in the same plans as unpaired data (``cgx.data.plan`` for
  folders, ``cgx.data.shard_plan`` for shards: one stream of pairs), so a resumed run continues the exact
  stream. The batches are ``{"A": (N, C_a, H, W), "B": (N, C_b, H, W), ...}`` with ``A[i]`` and ``B[i]``
  a pair; a method that does not ask for pairs (``Method.paired``) trains on them as two domains.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, IterableDataset

from ..config import DataConfig, ImageSpec
from .decode import DEFAULT, decode, load
from .images import DataError, list_images
from .corrupt import skip_or_raise, stand_in
from .loader import HandsOutBatches
from .plan import Plan
from .shards import IMAGE_KEYS, OpenStreams, Oversize, _Stream, load_domain, local_index, worker_steps
from .shard_plan import DomainPlan
from .source import _StepSampler
from .transforms import Augment, augment_together
from .workers import ignore_stop_signals


PAIR_FIELDS = ("ab", "a", "b")
"""The fields of a paired shard sample: ``ab`` (an aligned image) or ``a`` and ``b``."""


# --- splitting and joint augmentation ---------------------------------------------------------------

def _size(image) -> tuple[int, int]:
    """(width, height) of a PIL image or a (C, H, W) tensor."""
    return image.size if isinstance(image, Image.Image) else (image.shape[-1], image.shape[-2])


def split_aligned(image, name: str):
    """(A, B): the left and right halves of an aligned image (PIL or tensor), as the authors' aligned
    dataset crops them; a DataError naming ``name`` when the width is odd (halves of unequal size)."""
    w, h = _size(image)
    if w % 2 or w < 2:
        raise DataError(f"{name}: an aligned image holds A | B side by side, so its width must be even; it is {w}x{h}")
    half = w // 2
    if isinstance(image, Image.Image):
        return image.crop((0, 0, half, h)), image.crop((half, 0, w, h))
    return image[..., :half].contiguous(), image[..., half:].contiguous()


def decode_aligned(data: bytes, name: str, spec_a: ImageSpec = DEFAULT, spec_b: ImageSpec = DEFAULT):
    """An aligned image file's bytes as (A, B), each decoded for its domain's spec."""
    a, b = split_aligned(decode(data, name, spec_a), name)
    if (spec_b.channels, spec_b.depth) != (spec_a.channels, spec_a.depth):
        _, b = split_aligned(decode(data, name, spec_b), name)
    return a, b


def load_aligned(path: str | Path, spec_a: ImageSpec = DEFAULT, spec_b: ImageSpec = DEFAULT):
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise DataError(f"cannot read image {path}: {e.strerror or e}") from None
    return decode_aligned(data, str(path), spec_a, spec_b)


class JointAugment:
    """``Augment`` applied to both images of a pair with one set of random draws
    (``cgx.data.transforms.augment_together``)."""

    def __init__(self, augment: Augment) -> None:
        self.augment = augment

    def __call__(self, pair: tuple, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = augment_together(self.augment, pair, gen, what="images of the pair (A, B)")
        return a, b


# --- folder source ----------------------------------------------------------------------------------

class _PlannedPairs(Dataset):
    """Map-style dataset keyed by (epoch, position): that position's pair, jointly augmented. An unreadable
    file follows ``data.on_corrupt`` as in the unpaired folder source (the next readable file stands in)."""

    def __init__(self, files: list[Path], plan: Plan, augment: JointAugment, on_corrupt: str,
                 specs: dict[str, ImageSpec]) -> None:
        self.files, self.plan, self.augment, self.on_corrupt, self.specs = files, plan, augment, on_corrupt, specs

    def __len__(self) -> int:
        return self.plan.epoch_length

    def __getitem__(self, key: tuple[int, int]) -> dict:
        epoch, pos = key
        i = self.plan.index("A", epoch, pos)
        path, pair = self._read(i)
        gen = torch.Generator().manual_seed(self.plan.sample_seed("A", epoch, pos))
        try:
            a, b = self.augment(pair, gen)
        except DataError as e:
            raise DataError(f"{path}: {e}") from None
        return {"A": a, "B": b, "skipped": int(path != self.files[i])}

    def _read(self, i: int):
        """(path, (A, B)) of aligned file ``i``, or of its stand-in if it is unreadable (``cgx.data.corrupt``)."""
        files = self.files

        def read(k: int):
            try:
                return files[(i + k) % len(files)], load_aligned(files[(i + k) % len(files)], self.specs["A"],
                                                                self.specs["B"])
            except DataError:
                return None

        try:
            return files[i], load_aligned(files[i], self.specs["A"], self.specs["B"])
        except DataError as e:
            skip_or_raise(self.on_corrupt, f"pairs: {e}", "images")
        return stand_in(read, len(files) - 1,
                        f"pairs: none of the {len(files)} aligned images can be read (data.on_corrupt=skip)")


def _collate(items: list[dict]) -> dict:
    return {"A": torch.stack([x["A"] for x in items]), "B": torch.stack([x["B"] for x in items]),
            "skipped": sum(x["skipped"] for x in items)}


def aligned_files(root: str | Path, phase: str, key: str = "data.root") -> list[Path]:
    """The aligned images of split ``phase`` under ``root`` (``{root}/{phase}/``)."""
    root = Path(root)
    if not root.is_dir():
        from ..datasets.catalog import fetch_hint

        raise DataError(f"{key}: folder not found: {root} (expected {phase}/ of aligned A | B images in it; "
                        f"{fetch_hint(str(root), paired=True)})")
    folder = root / phase
    if not folder.is_dir():
        found = ", ".join(sorted(p.name for p in root.iterdir() if p.is_dir())[:8]) or "no folders"
        raise DataError(f"{key}: {folder} not found: data.paired=true reads the aligned layout, {phase}/ of A | B "
                        f"images (found {found}; `cgx demo-data --paired` writes one)")
    return list_images(folder)


class PairedFolderSource(HandsOutBatches):
    """``data.paired`` with ``source: folder``: the aligned images of ``{root}/{phase}/``."""

    def __init__(self, cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 shuffle: bool = True, accumulation: int = 1) -> None:
        self.files = aligned_files(cfg.root, cfg.phase)
        n = len(self.files)
        self.plan = Plan(n, n, world, batch, seed, shuffle, accumulation)
        self.augment = JointAugment(Augment(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip))
        self.rank, self.batch, self.workers, self.on_corrupt = rank, batch, cfg.workers, cfg.on_corrupt
        self.specs = {"A": cfg.a, "B": cfg.b}
        self.steps_per_epoch, self.epoch_length = self.plan.steps_per_epoch, self.plan.epoch_length

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        loader = DataLoader(
            _PlannedPairs(self.files, self.plan, self.augment, self.on_corrupt, self.specs),
            batch_size=self.batch, collate_fn=_collate,
            sampler=_StepSampler(self.plan, self.rank, start_step, stop_step),
            num_workers=self.workers, persistent_workers=False, prefetch_factor=4 if self.workers else None,
            worker_init_fn=ignore_stop_signals, pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(0),  # not the global one: see cgx.data.source
        )
        return self._hand_out(loader)


# --- shard source -----------------------------------------------------------------------------------

def sample_pair(sample: dict, spec_a: ImageSpec = DEFAULT, spec_b: ImageSpec = DEFAULT):
    """A paired shard sample's (A, B), decoded for the domains' specs."""
    def field(prefix: str):
        key = next((f"{prefix}.{e}" for e in IMAGE_KEYS if f"{prefix}.{e}" in sample), None)
        if key is not None and isinstance(sample[key], Oversize):
            raise sample[key].error()
        return key

    name = sample["__key__"]
    ab = field("ab")
    if ab is not None:
        return decode_aligned(sample[ab], f"{name}.{ab}", spec_a, spec_b)
    a, b = field("a"), field("b")
    if a is None or b is None:
        have = ", ".join(k for k in sample if not k.startswith("__"))
        raise ValueError(f"not a paired sample (it has {have}; `cgx shards --paired` writes ab.EXT, or a.EXT and b.EXT)")
    return decode(sample[a], f"{name}.{a}", spec_a), decode(sample[b], f"{name}.{b}", spec_b)


def check_paired_index(pattern: str, index: str | None, specs: dict[str, ImageSpec]) -> None:
    """A DataError when data.shards' index is not of paired shards, or of other image specs."""
    found = local_index(pattern, index, "data.shards")
    if found is None:
        return  # load_domain names a missing or malformed index
    path, record = found
    if not isinstance(record, dict) or record.get("paired") is not True:
        raise DataError(f"data.shards: {path} indexes unpaired shards (one image a sample); data.paired=true reads "
                        f"shards written by `cgx shards --paired` (or use data.paired=false with data.shards_a/shards_b)")
    image = record.get("image") if isinstance(record.get("image"), dict) else {}
    for d in ("a", "b"):
        rec, spec = image.get(d) if isinstance(image.get(d), dict) else {}, specs[d.upper()]
        if (rec.get("channels"), rec.get("depth")) != (spec.channels, spec.depth):
            raise DataError(f"data.shards: the {d.upper()} images of {path} were written as channels "
                            f"{rec.get('channels')}, depth {rec.get('depth')}; data.{d} is channels {spec.channels}, "
                            f"depth {spec.depth}: set data.{d} to match, or re-run `cgx shards --paired` with "
                            f"--channels-{d} {spec.channels} --depth-{d} {spec.depth}")


class PairedShardBatches(IterableDataset):
    """One rank's batches of pairs for steps ``start..stop-1`` (one stream of pairs, as one domain's in
    ``cgx.data.shards.ShardBatches``); each DataLoader worker yields whole batches."""

    def __init__(self, source: "PairedShardSource", start: int, stop: int | None) -> None:
        self.source, self.start, self.stop = source, start, stop

    def __iter__(self) -> Iterator[dict]:
        src = self.source
        streams = OpenStreams()
        try:
            for step, epoch, u, first in worker_steps(src, self.start, self.stop):
                stream = streams.at("pairs", epoch, u, first, lambda: _PairStream(
                    src.domain, src.plan, epoch, u, first, src.augment, src.on_corrupt, src.max_sample_bytes,
                    src.specs))
                a, b, keys, skipped = [], [], [], 0
                for _ in range(src.batch):
                    (x, y), key, corrupt = stream.take()
                    a.append(x)
                    b.append(y)
                    keys.append(key)
                    skipped += corrupt
                yield {"A": torch.stack(a), "B": torch.stack(b), "skipped": skipped, "keys": {"pairs": keys},
                       "step": step}
        finally:
            streams.close()


class _PairStream(_Stream):
    """A stream of paired samples: decoded as (A, B), jointly augmented."""

    def __init__(self, domain, plan, epoch, stream, start, augment, on_corrupt, max_bytes, specs) -> None:
        self.specs = specs
        super().__init__(domain, plan, epoch, stream, start, augment, on_corrupt, max_bytes)

    def decode(self, raw: dict):
        return sample_pair(raw, self.specs["A"], self.specs["B"])


class PairedShardSource(HandsOutBatches):
    """``data.paired`` with ``source: shards``: one stream of paired samples (``data.shards``)."""

    def __init__(self, cfg: DataConfig, *, batch: int, rank: int = 0, world: int = 1, seed: int = 0,
                 shuffle: bool = True, accumulation: int = 1) -> None:
        self.specs = {"A": cfg.a, "B": cfg.b}
        if not cfg.shards:
            raise DataError("data.shards is not set (data.paired=true with data.source=shards needs paired shard URLs)")
        check_paired_index(cfg.shards, cfg.index, self.specs)
        self.domain = load_domain("pairs", cfg.shards, cfg.index, "data.shards", "data.index")
        self.rank, self.world, self.batch, self.accumulation = rank, world, batch, accumulation
        self.workers = max(1, cfg.workers)
        self.loader_workers = cfg.workers
        self.plan = DomainPlan(self.domain.counts, world * accumulation, seed, 1, cfg.shuffle_buffer,
                               shuffle)
        self.augment = JointAugment(Augment(cfg.preprocess, cfg.load_size, cfg.crop_size, cfg.flip))
        self.on_corrupt, self.max_sample_bytes = cfg.on_corrupt, cfg.max_sample_bytes
        self.epoch_length = self.domain.total
        self.steps_per_epoch = max(1, self.epoch_length // (world * batch * accumulation))

    def batches(self, start_step: int, stop_step: int | None = None) -> Iterator[dict]:
        loader = DataLoader(
            PairedShardBatches(self, start_step, stop_step), batch_size=None,
            num_workers=self.loader_workers, persistent_workers=False,
            prefetch_factor=2 if self.loader_workers else None,
            worker_init_fn=ignore_stop_signals, pin_memory=torch.cuda.is_available(),
            generator=torch.Generator().manual_seed(0),  # not the global one: see cgx.data.source
        )
        return self._hand_out(loader)
