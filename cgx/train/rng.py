"""Capture and restore every random generator a rank uses (as plain tensors and ints, so a
checkpoint loads with ``weights_only=True``)."""
from __future__ import annotations

import random

import numpy as np
import torch


def rng_state() -> dict:
    kind, keys, pos, has_gauss, gauss = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {"keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "gauss": float(gauss)},
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(_tuples(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _tuples(x):
    return tuple(_tuples(v) for v in x) if isinstance(x, (list, tuple)) else x


def stream_seed(seed: int, step: int, rank: int, stream: int = 0) -> int:
    """The seed of rank ``rank``'s random streams from global step ``step`` on: a function of the run's
    seed, the step and the rank only, never of how many ranks ran before (a resume at another world size
    reseeds from it). ``stream`` tells apart further generators of the rank (each image buffer's).
    Step 0, stream 0 is ``seed + 1_000_003 * rank``, the seed every run has started its ranks with."""
    if step == 0 and stream == 0:
        return seed + 1_000_003 * rank
    return int(np.random.SeedSequence([seed % 2**63, step, rank, stream]).generate_state(1, np.uint64)[0] >> 2)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class RNGState:
    """Every random generator of this rank as one checkpointable part."""

    def state_dict(self) -> dict:
        return rng_state()

    def load_state_dict(self, state: dict) -> None:
        set_rng_state(state)
