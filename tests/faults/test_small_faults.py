"""The smaller items of issue 27 (case 8): what a stop says, duplicate recipe keys, long values in
messages, a checkpoint pruned while it is read, a raw pickle's warnings."""
from __future__ import annotations

import signal
from pathlib import Path

import pytest

from faultkit import one_line_error

from cgx.errors import CgxError


def test_a_stop_that_no_file_asked_for_never_says_stop_file(tmp_path):
    from cgx.run_dir import RunDir
    from cgx.train.stop import StopRequest, mark_stopped

    request = StopRequest(tmp_path / "STOP", signals=())
    (tmp_path / "STOP").touch()
    assert request.reason() == f"stop file {tmp_path / 'STOP'}"
    request.clear()  # the trainer clears the file: what it says was decided before
    assert "stop file" not in request.reason()  # another rank's signal, agreed over the ranks
    request.signalled = signal.SIGTERM
    mark_stopped(RunDir(tmp_path), 7, request.reason())
    assert (tmp_path / "STOPPED").read_text().startswith("stopped at step 7 on request (signal SIGTERM)")
