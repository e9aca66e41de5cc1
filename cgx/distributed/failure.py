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
import signal
import sys
import threading
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
    only: release the run lock), and exit the process with ``code`` at once.

    The line is written straight to the file descriptor, after the DataLoader's SIGCHLD handler is
    put back to the default: a loader worker ending meanwhile would otherwise raise inside this
    function (the handler raises in the main thread wherever it is) and cut the report short."""
    try:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    except (ValueError, OSError):
        pass
    line = None
    if isinstance(error, AGREED):
        if is_main:
            line = f"cgx: error: {error}"
    elif peer_failed(error):
        line = f"cgx: rank {rank}: stopping, another rank failed (its error says why)"
    elif isinstance(error, KeyboardInterrupt):
        line = f"cgx: rank {rank}: interrupted"
    else:
        line = f"cgx: error: rank {rank}: {reason(error)}; ending the job"
    try:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 -- exiting regardless
                pass
        if line is not None:
            os.write(2, (line + "\n").encode(errors="replace"))
        cleanup()
    finally:
        os._exit(code)
