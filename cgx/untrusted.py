"""Files a user hands cgx (checkpoints, the authors' ``.pth`` files, Inception weights) are loaded
here and only here: ``torch.load(weights_only=True)``, so that no file can run code, with one
message for every file that cannot be loaded that way.

torch's own message advises retrying with ``weights_only=False``: for a file from someone else that
is the advice to run their code, and for a damaged file it is wrong. cgx never gives it; the message
says what was found and that such files are refused."""
from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import torch

from .errors import CgxError

_TORCH_ADVICE = ("weights_only", "documentation", "file an issue", "add_safe_globals", "safe_globals",
                 "trusted source", "weightsunpickler error:")


def load_weights_file(path: str | Path, *, what: str, error: type[CgxError], mmap: bool = False) -> Any:
    """``path`` loaded with ``torch.load(weights_only=True)`` on the CPU (``mmap``: memory-mapped where
    the file's format allows). Anything that cannot be loaded so is ``error`` (a CgxError subclass),
    one line naming the file, ``what`` it should be, and why it was refused."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{what} {path} not found" if not path.exists() else f"{what} {path} is not a file")
    try:
        with warnings.catch_warnings():  # torch's own (a raw pickle's protocol ...): the error below says it
            warnings.simplefilter("ignore", UserWarning)
            try:
                return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap or None)
            except RuntimeError as e:
                if not mmap or "mmap" not in str(e):
                    raise
                return torch.load(path, map_location="cpu", weights_only=True)  # the legacy (non-zip) format
    except Exception as e:  # noqa: BLE001 -- whatever torch raises, the user gets one line
        raise error(refusal(path, what, e)) from None


def refusal(path: str | Path, what: str, e: BaseException) -> str:
    """The one message for a file that ``torch.load(weights_only=True)`` refused or could not read."""
    text = str(e)
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    core = [ln for ln in lines if not any(a in ln.lower() for a in _TORCH_ADVICE)]
    detail = (core[-1] if core else type(e).__name__)[:200]
    if "GLOBAL" in text or "global" in detail.lower():
        why = (f"it holds Python objects, not only tensors, numbers and strings ({detail}); cgx loads weights "
               f"without running any code from the file, so it is refused")
    else:
        why = f"it is damaged or not a PyTorch weights file ({detail})"
    return f"cannot load {what} {path}: {why}"
