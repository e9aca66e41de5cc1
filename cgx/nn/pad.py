"""Padding layers that keep their input's dtype under autocast.

torch's CPU autocast policy runs reflection and replication padding in float32 (CUDA's runs them in
the input's dtype): in a bf16 network every pad then casts its bf16 input up to float32 and the
convolution after it casts the padded result back down, forward and backward, about a sixth of a
bf16 CycleGAN step on a CPU with AMX. A pad only moves values, so computed in the input's dtype its
forward is bit-identical; only its backward sums the gradients of reflected border pixels in that
dtype. These subclasses (``isinstance`` checks for torch's classes still hold, the state dict is
unchanged) run the pad with autocast off, in the dtype they are given."""
from __future__ import annotations

import torch
from torch import nn


def _in_input_dtype(forward, x: torch.Tensor) -> torch.Tensor:
    if not torch.is_autocast_enabled(x.device.type):
        return forward(x)
    with torch.autocast(x.device.type, enabled=False):
        return forward(x)


class ReflectionPad2d(nn.ReflectionPad2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _in_input_dtype(super().forward, x)


class ReplicationPad2d(nn.ReplicationPad2d):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _in_input_dtype(super().forward, x)
