"""Damaged checkpoints, a full disk and SIGKILL while writing: the previous good checkpoint is used
(with a warning), a named error is given, and the final weights are those of an uninterrupted run."""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import assert_same_weights, load_weights

from cgx.run import main as run_main
from cgx.train.checkpoint import list_checkpoints, resolve
from cgx.train.manifest import MANIFEST

REPO = Path(__file__).resolve().parents[2]


def ckpt(tmp_path: Path, step: int) -> Path:
    return tmp_path / f"run/checkpoints/step_{step:08d}"


@pytest.mark.parametrize("damage", ["random_bytes", "truncated", "rank_file_deleted"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_good_one(make_recipe, tmp_path, capsys, damage):
    straight = make_recipe({"train": {"run_dir": str(tmp_path / "straight")}}, name="straight.yaml")
    assert run_main([str(straight)]) == 0
    recipe = make_recipe()
    assert run_main([str(recipe), "train.steps=6"]) == 0  # checkpoints at 3 and 6 ...
    newest = ckpt(tmp_path, 6)
    if damage == "random_bytes":
        (newest / "train.pt").write_bytes(os.urandom(4096))
    elif damage == "truncated":
        data = (newest / "train.pt").read_bytes()
        (newest / "train.pt").write_bytes(data[: len(data) // 2])
    else:
        (newest / "rank_00000.pt").unlink()
    # The run goes on to 9 steps: it must resume from step 3.
    capsys.readouterr()
    assert run_main([str(recipe), "train.steps=9"]) == 0
    err = capsys.readouterr()
    assert f"checkpoint {newest} is damaged" in err.err and "damaged_step_00000006" in err.err
    assert "resumed from" in err.out + err.err and "step_00000003" in err.out + err.err
    assert (tmp_path / "run/checkpoints/damaged_step_00000006").is_dir()  # kept, not deleted
    names = [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")]
    assert names == ["step_00000003", "step_00000006", "step_00000009"]


def test_resume_from_a_fallback_equals_an_uninterrupted_run(make_recipe, tmp_path, capsys):
    straight = make_recipe({"train": {"run_dir": str(tmp_path / "straight")}}, name="straight.yaml")
    assert run_main([str(straight)]) == 0
    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    (ckpt(tmp_path, 6) / "train.pt").write_bytes(os.urandom(100))
    # step 6 is damaged: resuming redoes steps 4-6 from the step-3 checkpoint, exactly.
    assert run_main([str(recipe)]) == 0
    assert_same_weights(load_weights(tmp_path / "straight"), load_weights(tmp_path / "run"))


def test_every_checkpoint_damaged_is_a_named_error(make_recipe, tmp_path, capsys):
    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    for step in (3, 6):
        (ckpt(tmp_path, step) / "rank_00000.pt").write_bytes(b"")
    capsys.readouterr()
    assert run_main([str(recipe), "train.steps=9"]) == 2
    err = capsys.readouterr().err
    assert "every checkpoint in" in err and "damaged" in err and "train.start_over=true" in err
    assert sorted(p.name for p in (tmp_path / "run/checkpoints").iterdir()) == [
        "damaged_step_00000003", "damaged_step_00000006"]


def test_a_checkpoint_without_its_manifest_is_not_trusted(make_recipe, tmp_path, capsys, demo_data):
    """Every checkpoint cgx writes has a manifest: one without it (a copy cut short, not cgx's) is
    refused in one line naming it, whoever reads it."""
    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    (ckpt(tmp_path, 6) / MANIFEST).unlink()
    from cgx.cli import main as cli_main

    capsys.readouterr()
    assert cli_main(["translate", str(ckpt(tmp_path, 6) / "train.pt"), str(demo_data / "testA"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cgx: error: checkpoint {ckpt(tmp_path, 6)} is damaged") and "MANIFEST.json is missing" in err
    assert "\n" not in err
    assert resolve(tmp_path / "run") == ckpt(tmp_path, 3)  # a run folder falls back to the one before


def test_unreadable_checkpoint_gives_no_unsafe_advice(make_recipe, tmp_path, capsys, demo_data):
    """A damaged train.pt that its manifest vouches for (damaged before the manifest was written): one
    line, naming the file, without torch's advice to load it with weights_only=False."""
    from cgx.train.manifest import write_manifest

    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    (ckpt(tmp_path, 6) / "train.pt").write_bytes(os.urandom(4096))
    write_manifest(ckpt(tmp_path, 6))
    from cgx.cli import main as cli_main

    capsys.readouterr()
    args = ["translate", str(ckpt(tmp_path, 6) / "train.pt"), str(demo_data / "testA"), str(tmp_path / "out")]
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()  # not a zip at all: refused from its ends, before hashing or loading
    assert err.startswith(f"cgx: error: checkpoint {ckpt(tmp_path, 6)} is damaged (train.pt is not a PyTorch file")
    assert "\n" not in err
    import zipfile

    with zipfile.ZipFile(ckpt(tmp_path, 6) / "train.pt", "w") as z:  # a whole zip, but not torch's: torch.load fails
        z.writestr("train/data.pkl", os.urandom(4096))
    write_manifest(ckpt(tmp_path, 6))
    assert cli_main(args) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgx: error: cannot load checkpoint file") and "damaged or not a PyTorch weights file" in err
    assert "weights_only" not in err and "\n" not in err


def test_translate_uses_the_newest_good_checkpoint(make_recipe, tmp_path):
    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    (ckpt(tmp_path, 6) / "rank_00000.pt").unlink()
    assert resolve(tmp_path / "run") == ckpt(tmp_path, 3)
    assert ckpt(tmp_path, 6).is_dir()  # a read-only tool moves nothing


@pytest.mark.multiprocess
@pytest.mark.skipif(os.geteuid() != 0, reason="mounting a small tmpfs needs root (CI runs as root)")
def test_disk_full_is_a_named_error_and_leaves_no_leftovers(make_recipe, tmp_path, capsys):
    disk = tmp_path / "small_disk"
    disk.mkdir()
    probe = make_recipe({"train": {"run_dir": str(tmp_path / "probe"), "steps": 1}}, name="probe.yaml")
    assert run_main([str(probe)]) == 0
    size = sum(p.stat().st_size for p in (tmp_path / "probe/checkpoints/step_00000001").iterdir())
    # Room for the TensorBoard log and about two checkpoints, not three.
    kib = (2 * size + 64 * 1024) // 1024 + 64
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs", str(disk)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    try:
        recipe = make_recipe({"train": {"run_dir": str(disk / "run"), "steps": 10, "ckpt_every": 1, "keep": 10,
                                        "image_every": 0}})
        capsys.readouterr()
        assert run_main([str(recipe)]) == 2
        err = capsys.readouterr().err
        assert "no space left on device for a checkpoint" in err and "resume from" in err
        leftovers = [p.name for p in (disk / "run/checkpoints").iterdir() if p.name.startswith(".")]
        assert leftovers == []  # a leftover .tmp would keep the disk full
        good = list_checkpoints(disk / "run/checkpoints")
        assert good and all(torch.load(p / "train.pt", weights_only=True)["step"] == int(p.name[5:]) for p in good)
        # Free the space (keep the newest), and the same command resumes.
        for p in good[:-1]:
            shutil.rmtree(p)
        assert run_main([str(recipe), "train.steps=" + str(int(good[-1].name[5:]) + 1), "train.keep=1"]) == 0
    finally:
        subprocess.run(["umount", str(disk)])


@pytest.mark.multiprocess
def test_sigkill_at_random_moments_never_loses_a_checkpoint(make_recipe, tmp_path):
    """Kill the training process (SIGKILL, seeded random moments, most during checkpoint writes),
    restart it each time: every restart resumes, and the final weights equal an uninterrupted run's."""
    # Enough steps that a fast machine (several tiny steps per restart) still gets killed often; 5 kills in
    # make test, 24 in make test-long (CGX_FAULT_KILLS).
    steps, kills = 48, int(os.environ.get("CGX_FAULT_KILLS", "5"))
    overrides = {"train": {"steps": steps, "ckpt_every": 1, "keep": 2, "log_every": 4, "image_every": 0}}
    straight = make_recipe({**overrides, "train": {**overrides["train"], "run_dir": str(tmp_path / "straight")}},
                           name="straight.yaml")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # both runs alike: thread count changes float sums
    cmd = [sys.executable, "-m", "cgx.run"]
    assert subprocess.run([*cmd, str(straight)], cwd=REPO, env=env, capture_output=True).returncode == 0
    recipe = make_recipe(overrides)
    rng = random.Random(1234)
    killed = 0
    for _ in range(kills):
        proc = subprocess.Popen([*cmd, str(recipe)], cwd=REPO, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # Wait until this process is training (a new checkpoint appears), then kill it a moment later.
        before = {p.name for p in list_checkpoints(tmp_path / "run/checkpoints")}
        deadline = time.time() + 60
        while proc.poll() is None and time.time() < deadline:
            now = {p.name for p in list_checkpoints(tmp_path / "run/checkpoints")}
            if now - before:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.1))
        if proc.poll() is not None:
            break  # it finished
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
    assert killed >= min(kills, 5)
    finish = subprocess.run([*cmd, str(recipe)], cwd=REPO, env=env, capture_output=True, text=True)
    assert finish.returncode == 0, finish.stderr[-2000:]  # whatever is left, to the end
    assert_same_weights(load_weights(tmp_path / "straight"), load_weights(tmp_path / "run"))
