"""Which precision a run or an inference uses (``auto`` picks bf16 where the hardware has it), and
the one autocast factory that training, translate and eval share."""
from __future__ import annotations

import contextlib

import torch

from .choices import PRECISIONS  # noqa: F401 -- every precision a recipe or a command accepts
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
"""A resolved precision -> the dtype autocast computes in (None: no autocast)."""


def cpu_has_bf16() -> bool:
    """AMX or AVX512-BF16: the CPU computes bf16 itself (elsewhere it is emulated, ~3x slower than fp32)."""
    cpu = getattr(torch, "cpu", None)
    checks = [getattr(cpu, n, None) for n in ("_is_amx_tile_supported", "_is_avx512_bf16_supported")]
    return any(c() for c in checks if c is not None)


def fast_bf16(device: torch.device) -> bool:
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return cpu_has_bf16()
    return False


def resolve(precision: str, device: torch.device) -> str:
    """``auto``: bf16 where ``device`` computes it natively (CUDA with bf16, a CPU with AMX or
    AVX512-BF16), else fp32. Anything else as given."""
    if precision == "auto":
        return "bf16" if fast_bf16(device) else "fp32"
    return precision


def autocast(precision: str, device: torch.device):
    """The autocast context for ``precision`` on ``device`` (``auto`` resolved first): a new context
    manager each call, a do-nothing one for fp32."""
    dtype = DTYPES[resolve(precision, device)]
    return contextlib.nullcontext() if dtype is None else torch.autocast(device.type, dtype=dtype)


def describe(precision: str, device: torch.device) -> str:
    """``bf16 (auto: ...)`` for logs."""
    chosen = resolve(precision, device)
    if precision != "auto":
        return chosen
    why = {"cuda": "CUDA bf16", "cpu": "AMX/AVX512-BF16"}.get(device.type, device.type)
    return f"{chosen} (auto: {why} {'present' if chosen == 'bf16' else 'absent'})"
