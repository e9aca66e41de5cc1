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


def test_a_key_given_twice_in_a_recipe_is_refused_naming_both_lines(tmp_path, capsys):
    from cgx.run import main as run_main

    recipe = tmp_path / "recipe.yaml"
    recipe.write_text("train:\n  steps: 10\n  run_dir: runs/x\nmodel: {}\ntrain:\n  steps: 1000\n")
    assert run_main([str(recipe)]) == 2
    one_line_error(capsys, str(recipe), "'train'", "line 1", "line 5")
    recipe.write_text("optim: {lr: 0.1, lr: 0.2}\n")
    assert run_main([str(recipe)]) == 2
    one_line_error(capsys, str(recipe), "'lr'", "twice")
    recipe.write_text("base: &b {steps: 1}\ntrain:\n  <<: *b\n  steps: 2\n")  # a merge's key may be overridden
    from cgx.config import parse_yaml

    assert parse_yaml(recipe.read_text(), str(recipe))["train"] == {"steps": 2}


@pytest.mark.parametrize("override", ["train.steps=[{big}", "train.steps=!!str {big}", "{big}=1", "train.{big}=1",
                                      "model.generator.{big}=1", "model.generator.name={big}"])
def test_a_long_value_is_shown_short_once(tmp_path, override):
    from cgx.config import load_config
    from cgx.plugins import default_registry
    from cgx.train import components

    big = "x" * 10_000
    with pytest.raises(CgxError) as e:
        components.check_components(load_config(None, [override.format(big=big)]), default_registry())
    assert len(str(e.value)) < 1000 and "\n" not in str(e.value), str(e.value)[:300]


def test_a_raw_pickle_is_refused_without_torchs_warnings(tmp_path):
    import pickle
    import warnings

    from cgx.train.checkpoint import load_file

    path = tmp_path / "train.pt"
    path.write_bytes(pickle.dumps({"generators": [1, 2, 3]}, protocol=4))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(CgxError, match="not a PyTorch weights file"):
            load_file(path)
    assert not [w for w in caught if issubclass(w.category, UserWarning)], [str(w.message)[:100] for w in caught]


@pytest.mark.parametrize("when", ["checked", "read"])
def test_a_checkpoint_pruned_while_read_is_replaced_not_damaged(tiny_run, tmp_path, capsys, monkeypatch, when):
    """A running training prunes the checkpoint a reader chose, while the reader checks its manifest
    or loads it: the reader takes the run's newest again, and says nothing of damage."""
    import shutil

    from cgx.train import checkpoint

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    newest = run / "checkpoints" / "step_00000004"
    shutil.copytree(run / "checkpoints" / "step_00000002", newest)
    name = {"checked": "problem", "read": "read_checkpoint"}[when]
    real = getattr(checkpoint, name)

    def racing(folder, *args):
        if Path(folder) == newest and newest.exists():
            shutil.rmtree(newest)  # the training's prune, between the reader's choice and its reading
        return real(folder, *args)

    monkeypatch.setattr(checkpoint, name, racing)
    got = checkpoint.read_generators(run)
    assert got.checkpoint == run / "checkpoints" / "step_00000002"
    assert "damaged" not in capsys.readouterr().err
    shutil.copytree(run / "checkpoints" / "step_00000002", newest)  # a checkpoint named, then removed: said so
    with pytest.raises(CgxError, match="was removed while it was"):
        checkpoint.read_generators(newest)
