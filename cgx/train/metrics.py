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
    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.names: list[str] | None = None
        self.sum: torch.Tensor | None = None
        self.steps = 0
        self.first_bad = torch.full((), NO_STEP, dtype=torch.int64, device=device)
        self.bad_terms: torch.Tensor | None = None

    def add(self, step: int, losses: dict[str, torch.Tensor]) -> None:
        """Record one step's (detached, scalar) loss terms. Device ops only."""
        if self.names is None:
            self.names = list(losses)
        values = torch.stack([losses[k].float() for k in self.names])
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
        mean = strategy.all_reduce(self.sum / self.steps, "mean").tolist()
        self.sum, self.steps = None, 0
        return dict(zip(self.names, mean))
