"""Two runs in one folder, a fresh start into a used folder: refused with a named error, or the old
run moved aside; never a run's checkpoints overwritten, pruned or mixed with another's."""
from __future__ import annotations

import pytest

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

from cgx.run import main as run_main
from cgx.train.checkpoint import list_checkpoints

REPO = Path(__file__).resolve().parents[2]


def start(recipe: Path, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "cgx.run", str(recipe), *overrides], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(path: Path, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while not path.exists():
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.1)


@pytest.mark.multiprocess
def test_a_second_run_in_the_same_folder_is_refused_naming_the_first(make_recipe, tmp_path, capsys):
    recipe = make_recipe({"train": {"steps": 100000, "ckpt_every": 100000}})
    first = start(recipe)
    try:
        wait_for(tmp_path / "run/tb")
        assert run_main([str(recipe)]) == 2
        err = capsys.readouterr().err
        assert f"run folder {tmp_path / 'run'} is in use by another cgx run" in err
        assert f"pid {first.pid}" in err and "train.run_dir" in err
        assert not list_checkpoints(tmp_path / "run/checkpoints")  # the refused run wrote nothing
    finally:
        first.kill()  # SIGKILL: the lock dies with it
        first.wait()
    # The lock file stays behind, naming a process that is gone: taken over with a warning.
    assert (tmp_path / "run/LOCK").exists()
    assert run_main([str(recipe), "train.steps=2"]) == 0
    err = capsys.readouterr().err
    assert "taking over the lock" in err and f"pid {first.pid}" in err
    assert not (tmp_path / "run/LOCK").exists()  # released at the end


def test_resume_false_in_a_used_folder_is_refused(make_recipe, tmp_path, capsys):
    recipe = make_recipe({"train": {"steps": 4, "ckpt_every": 2}})
    assert run_main([str(recipe)]) == 0
    before = {p.name: (p / "train.pt").read_bytes() for p in list_checkpoints(tmp_path / "run/checkpoints")}
    assert run_main([str(recipe), "train.resume=false", "train.steps=6"]) == 2
    err = capsys.readouterr().err
    assert "train.resume=false" in err and "step_00000004" in err and "train.start_over=true" in err
    after = {p.name: (p / "train.pt").read_bytes() for p in list_checkpoints(tmp_path / "run/checkpoints")}
    assert after == before  # untouched


def test_start_over_moves_the_old_run_aside_and_keeps_its_own_checkpoints(make_recipe, tmp_path, capsys):
    recipe = make_recipe({"train": {"steps": 40, "ckpt_every": 20, "keep": 2}})
    assert run_main([str(recipe)]) == 0
    old = {p.name: (p / "train.pt").read_bytes() for p in list_checkpoints(tmp_path / "run/checkpoints")}
    assert sorted(old) == ["step_00000020", "step_00000040"]
    assert run_main([str(recipe), "train.start_over=true", "train.steps=6", "train.ckpt_every=3"]) == 0
    assert "moved the previous run's config.yaml, checkpoints, tb into" in capsys.readouterr().err
    # The new run's own checkpoints, not pruned in favour of the old run's higher step numbers ...
    assert [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")] == ["step_00000003", "step_00000006"]
    assert torch.load(tmp_path / "run/checkpoints/step_00000006/train.pt", weights_only=True)["step"] == 6
    # ... and the old run kept whole, byte for byte.
    (aside,) = [p for p in (tmp_path / "run").iterdir() if p.name.startswith("replaced-")]
    kept = {p.name: (p / "train.pt").read_bytes() for p in list_checkpoints(aside / "checkpoints")}
    assert kept == old and (aside / "tb").is_dir() and (aside / "config.yaml").is_file()
