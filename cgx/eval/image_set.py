"""Test images for evaluation: a folder (recursive, sorted) or WebDataset shards (in index order),
read as uint8 tensors (8-bit RGB domains, as always) or as float tensors in [-1, 1] of the domain's
spec (any other: ``cgx.data.decode``), any part of the set at a time (each rank reads only its share)."""
from __future__ import annotations

import bisect
from pathlib import Path

import numpy as np
import torch

from ..config import ImageSpec
from ..data.decode import DEFAULT, as_tensor, decode, load
from ..data.images import DataError, list_images


def _to_uint8(image) -> torch.Tensor:
    return torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)


class ImageSet:
    """``spec``: a folder of images, or shard URLs as in the recipe's ``data.shards_a`` (brace
    pattern, paths, globs; the index written by ``cgx shards`` beside them gives the counts).
    ``max_images``: only the first that many. ``image``: the domain's image spec (data.a / data.b)."""

    def __init__(self, spec: str | Path, key: str, max_images: int | None = None, image: ImageSpec = DEFAULT) -> None:
        self.spec = str(spec)
        self.key = key
        self.image = image
        if Path(spec).is_dir():
            self.kind = "folder"
            self.files = list_images(spec)
            total = len(self.files)
        else:
            from ..data.shards import check_index_spec, load_domain

            if not any(c in self.spec for c in ".{*:"):
                raise DataError(f"{key}: {spec} is neither a folder of images nor shard URLs")
            self.kind = "shards"
            check_index_spec(self.spec, None, image, key, "the run's data spec")
            self.domain = load_domain(key, self.spec, None, key, key)
            self.starts = np.cumsum((0,) + self.domain.counts).tolist()
            total = self.domain.total
        self.total = total if max_images is None else min(total, max_images)

    def __len__(self) -> int:
        return self.total

    def load(self, indices: range) -> list[torch.Tensor]:
        """Images ``indices`` (a contiguous range), in order: uint8 (3, H, W) for an 8-bit RGB domain,
        else float (C, H, W) in [-1, 1]."""
        if len(indices) == 0:
            return []
        if indices.start < 0 or indices.stop > self.total:
            raise IndexError(f"{indices} outside 0..{self.total}")
        if self.kind == "folder":
            return [self._convert(load(f, self.image)) for f in self.files[indices.start: indices.stop]]
        from ..data.shards import IMAGE_KEYS, Broken, read_shard

        out = []
        i = indices.start
        while i < indices.stop:
            j = bisect.bisect_right(self.starts, i) - 1
            url, first = self.domain.urls[j], self.starts[j]
            stop = min(indices.stop, self.starts[j + 1])
            for sample in read_shard(url, i - first, stop - first):
                if isinstance(sample, Broken):
                    raise DataError(f"{self.key}: sample {sample.index} of {sample.url} cannot be read: {sample.reason}")
                try:
                    ext = next(k for k in IMAGE_KEYS if k in sample)
                    out.append(self._convert(decode(sample[ext], f"{sample['__key__']}.{ext}", self.image)))
                except Exception as e:  # noqa: BLE001 -- any undecodable sample is a data error
                    raise DataError(f"{self.key}: sample {sample.get('__key__')} of {url} cannot be decoded: {e}") from None
            i = stop
        return out

    def _convert(self, image) -> torch.Tensor:
        return _to_uint8(image) if self.image.is_default else as_tensor(image)
