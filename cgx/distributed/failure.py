"""How one rank's failure ends the whole job at once.

A rank that fails inside training must not call a collective on its way out (a barrier, or the
process group's tear-down): the other ranks are waiting in another collective (DDP's all-reduce),
and both would wait until ``distributed.timeout_min``, printing nothing. Instead the failing rank
prints why, once, and leaves the process at once (``os._exit``: no collective, no destructor that
talks to the peers). Its peers' collectives then fail (gloo) or torchrun, seeing a worker exit
non-zero, stops them (SIGTERM, then SIGKILL after 30 s: NCCL), and restarts the job under
``--max-restarts``, which resumes from the last checkpoint."""
from __future__ import annotations

import os
import sys
import traceback
from typing import Callable, NoReturn

import torch.distributed as dist

from ..errors import CheckpointError, NonFiniteLossError, user_message

AGREED = (NonFiniteLossError, CheckpointError)
"""Errors every rank raises together during training, after agreeing on them (NaN checks, a
checkpoint write): rank 0 prints them."""

_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "Broken pipe", "Socket Timeout")


def peer_failed(error: BaseException) -> bool:
    """Did ``error`` come from a collective whose peer is gone (another rank failed first)?"""
    return isinstance(error, dist.DistError) or (isinstance(error, RuntimeError)
                                                 and any(s in str(error) for s in _PEER_GONE))


def reason(error: BaseException) -> str:
    """``error`` in one line: a CgxError's own message; anything else its type, first line and where."""
    message = user_message(error)
    if message is not None:
        return message
    first = next((ln.strip() for ln in str(error).splitlines() if ln.strip()), "")
    where = ""
    tb = traceback.extract_tb(error.__traceback__)
    if tb:
        where = f" (at {os.path.basename(tb[-1].filename)}:{tb[-1].lineno})"
    return f"{type(error).__name__}: {first}{where}"


def end_rank(error: BaseException, rank: int, is_main: bool, code: int, cleanup: Callable[[], None]) -> NoReturn:
    """Report ``error`` (once over the job, see AGREED and peer_failed), run ``cleanup`` (local work
    only: release the run lock), and exit the process with ``code`` at once."""
    try:
        if isinstance(error, AGREED):
            if is_main:
                print(f"cgx: error: {error}", file=sys.stderr)
        elif peer_failed(error):
            print(f"cgx: rank {rank}: stopping, another rank failed (its error says why)", file=sys.stderr)
        elif isinstance(error, KeyboardInterrupt):
            print(f"cgx: rank {rank}: interrupted", file=sys.stderr)
        else:
            print(f"cgx: error: rank {rank}: {reason(error)}; ending the job", file=sys.stderr)
        cleanup()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- exiting regardless
                pass
        os._exit(code)
