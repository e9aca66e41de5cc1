"""Workers asked to stop stay stopped when torchrun restarts them after their exit (a restart that
counts), and train on when torchrun stopped them itself for an elastic membership change (a restart
that does not count: the count the STOPPED marker records is still the count)."""
from cgx.run_dir import RunDir
from cgx.train.stop import mark_stopped, stays_stopped


def test_a_restart_after_a_stop_stays_stopped_a_membership_change_trains_on(tmp_path, monkeypatch):
    run = RunDir(tmp_path)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    mark_stopped(run, 9, "signal SIGTERM")
    assert (tmp_path / "STOPPED").read_text().startswith("stopped at step 9 on request (signal SIGTERM)")
    assert stays_stopped(run) is None  # same round count: torchrun restarted them for a node that joined
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "2")
    assert stays_stopped(run) == run.stopped  # their exit 75 counted as a failure: stay stopped
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "0")
    assert stays_stopped(run) is None  # a first launch trains on (and removes the marker)


def test_a_marker_without_a_round_stays_stopped_on_any_restart(tmp_path, monkeypatch):
    monkeypatch.delenv("TORCHELASTIC_RESTART_COUNT", raising=False)
    run = RunDir(tmp_path)
    mark_stopped(run, 3, "stop file")  # written outside torchrun (or by an older cgx)
    monkeypatch.setenv("TORCHELASTIC_RESTART_COUNT", "1")
    assert stays_stopped(run) == run.stopped
