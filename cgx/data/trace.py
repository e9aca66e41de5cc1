"""A test hook: which samples each trained micro-batch held, with their augmentation.

Set the environment variable ``CGX_TRACE_SAMPLES`` to a path prefix and every rank appends one JSON
line per trained micro-batch to ``{prefix}.rank{N}``: the optimizer step, the micro-batch's place
in the global batch (``m = rank * accumulation + slot``) and, per sample and domain, its id (file
index or shard key), its augmentation seed and a digest of the augmented image (equal digests:
equal crop, flip and pixels). An environment variable, not a recipe key: a recipe handed over
cannot switch it on, and nothing is written or computed without it. Used by
tests/distributed/test_global_batch.py.
"""
from __future__ import annotations

import hashlib
import json
import os

import torch

ENV = "CGX_TRACE_SAMPLES"


def tracing() -> bool:
    return bool(os.environ.get(ENV))


def digest(x: torch.Tensor) -> str:
    return hashlib.sha1(x.detach().contiguous().cpu().numpy().tobytes()).hexdigest()[:16]


def record(where, image: torch.Tensor, seed: int) -> dict:
    """One sample of one domain: ``where`` identifies it (a position, a file index, a shard key)."""
    return {"id": where, "seed": seed, "digest": digest(image)}


def write(step: int, micro: int, rank: int, samples: list) -> None:
    """Append the trained micro-batch ``micro`` of optimizer step ``step`` to this rank's file."""
    with open(f"{os.environ[ENV]}.rank{rank}", "a") as f:
        f.write(json.dumps({"step": step, "m": micro, "samples": samples}) + "\n")
