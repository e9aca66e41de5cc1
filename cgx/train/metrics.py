"""Loss terms kept on the device between log steps: no host sync in the hot loop.

Every step adds its loss terms to a running sum and notes, on the device, the first step whose terms
were not finite. Only ``reduce`` (on log steps) and ``check_finite`` (on log steps and before every
checkpoint) wait for the device and talk to the other ranks."""
from __future__ import annotations

from typing import Callable

import torch

from ..errors import NonFiniteLossError

NO_STEP = 2**62


class LossMeter:
    """Each term's running sum since the last log step. A step may report fewer or other terms than the
    last (a method's pretraining phase trains one group alone): each term is averaged over the steps that
    reported it, and a term no step of the interval reported is left out of that log step."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.names: list[str] | None = None
        self.sum: torch.Tensor | None = None
        self.counts: list[int] = []
        self.steps = 0
        self.first_bad = torch.full((), NO_STEP, dtype=torch.int64, device=device)
        self.bad_terms: torch.Tensor | None = None

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        """Record one step's (detached, scalar) loss terms. Device ops only."""
        if self.names is None:
            self.names = list(losses)
            self.counts = [0] * len(self.names)
        new = [k for k in losses if k not in self.names]
        if new:  # terms no step reported before: every rank meets them at the same step
            self.names += new
            self.counts += [0] * len(new)
            pad = torch.zeros(len(new), device=self.device)
            if self.sum is not None:
                self.sum = torch.cat([self.sum, pad])
            if self.bad_terms is not None:
                self.bad_terms = torch.cat([self.bad_terms, pad.bool()])
        reported = torch.stack([losses[k].float() for k in losses])
        if list(losses) == self.names:
            values = reported
        else:  # some terms absent this step: they add nothing
            where = torch.tensor([self.names.index(k) for k in losses], device=self.device)
            values = torch.zeros(len(self.names), device=self.device).index_put((where,), reported)
        for k in losses:
            self.counts[self.names.index(k)] += 1
        self.sum = values if self.sum is None else self.sum + values
        self.steps += 1
        bad_terms = ~torch.isfinite(values)
        self.bad_terms = bad_terms if self.bad_terms is None else self.bad_terms | bad_terms
        bad = bad_terms.any()
        step_t = torch.full((), step, dtype=torch.int64, device=self.device)
        self.first_bad = torch.where(bad, torch.minimum(self.first_bad, step_t), self.first_bad)

    def check_finite(self, strategy, where: Callable[[], str]) -> None:
        """Collective: raise NonFiniteLossError on every rank if any rank saw a non-finite loss term;
        ``where()`` (called only then) ends the message."""
        first = int(strategy.all_reduce(self.first_bad, "min").item())
        if first != NO_STEP:
            terms = [] if self.bad_terms is None else [n for n, b in zip(self.names, self.bad_terms.tolist()) if b]
            which = f" ({', '.join(terms)} on rank {strategy.rank})" if terms else ""
            raise NonFiniteLossError(f"non-finite loss at step {first}{which}; {where()}")

    def reduce(self, strategy) -> dict[str, float]:
        """Collective: each term's mean over the steps since the last call and over ranks; resets."""
        if self.sum is None:
            return {}
        counts = torch.tensor([max(c, 1) for c in self.counts], dtype=self.sum.dtype, device=self.device)
        mean = strategy.all_reduce(self.sum / counts, "mean").tolist()
        out = {name: m for name, m, c in zip(self.names, mean, self.counts) if c}
        self.sum, self.steps, self.counts = None, 0, [0] * len(self.names)
        return out
