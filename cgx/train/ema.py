"""An exponential moving average of the generator group's weights (``train.ema``).

    ema <- decay * ema + (1 - decay) * weights        after every generator step

Kept in fp32 on every rank: the generator group's weights are the same on every rank (DDP
synchronises gradients; DeepSpeed ZeRO 1 and 2 shard optimizer state and gradients, not the weights),
so every rank's average is the same without any communication. Non-float buffers (counters) are
copied. Saved with every checkpoint (``train.pt["ema"]``) and restored on resume; inference reads it
as the generator weights (``cgx.train.checkpoint.read_generators(weights="ema")``)."""
from __future__ import annotations

import torch
from torch import nn


class EMA:
    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0 < decay < 1:
            raise ValueError(f"train.ema must be in (0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: (v.detach().float().clone() if v.is_floating_point() else v.detach().clone())
                       for k, v in module.state_dict().items()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        current = module.state_dict()
        floats = [k for k, v in self.shadow.items() if v.is_floating_point()]
        torch._foreach_lerp_([self.shadow[k] for k in floats], [current[k].detach().float() for k in floats],
                             1.0 - self.decay)
        for k, v in self.shadow.items():
            if not v.is_floating_point():
                v.copy_(current[k])

    def state_dict(self) -> dict:
        return {"decay": self.decay, "weights": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        missing = set(self.shadow) ^ set(state["weights"])
        if missing:
            raise KeyError(f"EMA weights do not match the generators ({sorted(missing)[:3]} ...)")
        for k, v in state["weights"].items():
            self.shadow[k].copy_(v)
