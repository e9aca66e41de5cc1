"""Iterating a DataLoader so that a cgx error raised in a loader worker keeps its one-line message.

PyTorch re-raises a worker's exception in the main process as the same type, with the worker's
whole traceback as its message ("Caught DataError in DataLoader worker process 0. Original
Traceback ..."). For a ``CgxError`` (a user's problem: a corrupt image, a stale index) the user
needs the original message, which names the file; the command line prints it as one line.
"""
from __future__ import annotations

from typing import Iterable, Iterator

from ..errors import CgxError


def worker_message(error: BaseException) -> str | None:
    """The original message of an exception PyTorch re-raised from a loader worker, else None."""
    text = str(error)
    if not text.startswith("Caught ") or "Original Traceback" not in text:
        return None
    marker = f"\n{type(error).__module__}.{type(error).__qualname__}: "
    at = text.rfind(marker)
    return text[at + len(marker):].strip() if at >= 0 else None


class HandsOutBatches:
    """What both sources share: the batch iterators they hand out (``batches``) are closed by
    ``close()`` (ending their loader workers), whoever forgot to."""

    def _hand_out(self, loader: Iterable[dict]) -> Iterator[dict]:
        batches = batches_of(loader)
        self.__dict__.setdefault("_handed_out", []).append(batches)
        return batches

    def close(self) -> None:
        for batches in self.__dict__.pop("_handed_out", []):
            batches.close()


def batches_of(loader: Iterable[dict]) -> Iterator[dict]:
    """The loader's batches; a CgxError from a worker is raised again with its own message."""
    try:
        yield from loader
    except CgxError as e:
        message = worker_message(e)
        if message is None:
            raise
        raise type(e)(message) from None
