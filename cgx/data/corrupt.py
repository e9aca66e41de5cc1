"""What both data sources do with an image they cannot read (``data.on_corrupt``), in one place.

``raise``: a DataError naming the file or sample. ``skip``: a warning, the sample is counted
(``batch["skipped"]``, logged as ``data/skipped``) and the next readable one of the same domain
stands in, chosen by position only, so a resumed run sees the same stand-in."""
from __future__ import annotations

import logging
from typing import Callable, TypeVar

from ..errors import DataError
from ..safe_text import shown

log = logging.getLogger("cgx.data")
T = TypeVar("T")


def skip_or_raise(on_corrupt: str, message: str, what: str = "samples") -> None:
    """One unreadable image: raise (``on_corrupt == "raise"``) or warn that it is skipped."""
    if on_corrupt == "raise":
        raise DataError(f"{message} (data.on_corrupt=raise; `skip` skips such {what})")
    log.warning("cgx: skipped %s", shown(message))


def stand_in(read: Callable[[int], T | None], limit: int, none_left: str | Callable[[], str]) -> T:
    """``read(k)`` for the first ``k`` in 1..``limit`` that is readable (``read`` gives None for one
    that is not); a DataError saying ``none_left`` (or what it returns, when called) when none is."""
    for k in range(1, limit + 1):
        found = read(k)
        if found is not None:
            return found
    raise DataError(none_left() if callable(none_left) else none_left)
