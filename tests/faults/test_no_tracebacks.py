"""Tracebacks left by issue 17, case 10: each is now one line naming the file, the folder or the plugin."""
from __future__ import annotations

import os
import sys
import types
from pathlib import Path

import pytest

from cgx.cli import main as cli_main
from cgx.run import main as run_main


def one_line_error(capsys, *words) -> str:
    err = capsys.readouterr().err.strip()
    last = err.splitlines()[-1] if err else ""
    assert last.startswith("cgx: error: ") and "Traceback" not in err, err
    for w in words:
        assert w in last, err
    return last


def test_a_run_dir_that_is_a_file_is_named(make_recipe, tmp_path, capsys):
    (tmp_path / "run").write_text("not a folder")
    assert run_main([str(make_recipe())]) == 2
    one_line_error(capsys, str(tmp_path / "run"), "train.run_dir")


def test_a_read_only_run_folder_is_named(make_recipe, tmp_path, capsys, monkeypatch):
    """As root nothing is read-only: os.open refuses the LOCK file as a read-only folder would."""
    import cgx.train.lock as lock

    real = os.open

    def refuse(path, *a, **k):
        if str(path).endswith("LOCK"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(lock.os, "open", refuse)
    assert run_main([str(make_recipe())]) == 2
    one_line_error(capsys, str(tmp_path / "run"), "Permission denied", "train.run_dir")


def test_shards_into_a_folder_that_cannot_be_written(demo_data, tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert cli_main(["shards", str(demo_data), str(blocker / "out"), "--workers", "1", "--no-progress"]) == 2
    one_line_error(capsys, str(blocker / "out"))


def test_eval_prints_the_scores_before_failing_to_write_them(tiny_run, demo_data, tmp_path, capsys, monkeypatch):
    import cgx.eval.command as command

    results = {"AtoB": {"FID": 1.0, "KID_mean": 0.1, "KID_std": 0.01, "cycle_L1": 0.2, "n_translated": 2, "n_real": 2}}
    monkeypatch.setattr(command, "evaluate", lambda *a, **k: results)
    monkeypatch.setattr(command, "InceptionFeatures", lambda path: __import__("torch").nn.Identity())
    monkeypatch.setattr(command, "resolve_weights", lambda *a: types.SimpleNamespace(path="w", source="s", sha256="0"))
    monkeypatch.setattr(command, "report", lambda *a, **k: {})
    blocker = tmp_path / "file"
    blocker.write_text("x")  # the scores' folder cannot be made: a read-only run folder, as root
    assert cli_main(["eval", str(tiny_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "--direction", "AtoB", "-o", str(blocker / "scores.json"), "--no-progress"]) == 2
    out = capsys.readouterr()
    assert "1.000" in out.out and "AtoB" in out.out
    assert out.err.startswith("cgx: error: cannot write the scores to") and str(blocker) in out.err


def test_a_plugin_that_calls_sys_exit_at_import_is_named(tmp_path, monkeypatch):
    from cgx.errors import PluginError
    from cgx.plugins import Registry

    (tmp_path / "exiting_plugin.py").write_text("import sys\nsys.exit(3)\n")
    dist_info = tmp_path / "exiting_plugin-1.0.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: exiting-plugin\nVersion: 1.0\n")
    (dist_info / "entry_points.txt").write_text("[cgx]\nexiting = exiting_plugin\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("CGX_LOAD_PLUGINS", raising=False)
    with pytest.raises(PluginError, match=r"plugin 'exiting' from exiting-plugin 1.0 .* SystemExit: 3"):
        Registry().load_entry_points()
    sys.modules.pop("exiting_plugin", None)


def test_a_shard_deleted_mid_run_is_an_error_naming_it(demo_shards, tmp_path):
    """Not skipped and counted as corrupt samples (on_corrupt=skip), with exit 0."""
    import shutil

    from cgx.config import DataConfig
    from cgx.data.shards import ShardSource
    from cgx.errors import DataError

    shards = tmp_path / "shards"
    shutil.copytree(demo_shards, shards)
    cfg = DataConfig(source="shards", shards_a=str(shards / "trainA-{000000..000002}.tar"),
                     shards_b=str(shards / "trainB-{000000..000002}.tar"), workers=0, load_size=32, crop_size=32,
                     on_corrupt="skip", shuffle_buffer=0)
    source = ShardSource(cfg, batch=1)
    (shards / "trainA-000001.tar").unlink()  # after the source was built
    with pytest.raises(DataError, match=r"shard .*trainA-000001.tar is missing"):
        for _ in source.batches(0, 16):
            pass


@pytest.mark.parametrize("crop, fits", [(48, 64), (16, 32)], ids=["not-a-multiple", "too-small"])
def test_a_crop_the_generator_cannot_take_is_named_before_training(make_recipe, tmp_path, capsys, crop, fits):
    """A 5-level U-Net takes sides that are multiples of 32 (and at least 32): a 48 or 16 px crop is one line
    naming data.crop_size and a size that fits, before any step (it was a ValueError traceback at step 1)."""
    import yaml

    recipe = make_recipe({"data": {"load_size": crop, "crop_size": crop}})
    given = yaml.safe_load(recipe.read_text())
    given["model"]["generator"] = {"name": "unet", "ngf": 4, "num_downs": 5}
    recipe.write_text(yaml.safe_dump(given))
    assert run_main([str(recipe)]) == 2
    line = one_line_error(capsys, f"data.crop_size={crop}", "multiples of 32", f"data.crop_size={fits}")
    assert "AtoB" in line
    assert not list((tmp_path / "run").glob("checkpoints/step_*"))
