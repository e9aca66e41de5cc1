"""A run folder handed over by someone else, or pointed at a folder that is not a run: cgx creates,
replaces, prunes or moves only what it made, never through a symbolic link (issue 27, cases 1, 3, 7).

Every refusal here happens before a step is trained: these tests train nothing and stay fast."""
from __future__ import annotations

import os
from pathlib import Path

import pytest
import yaml

from conftest import TINY_RECIPE, merge
from faultkit import one_line_error

from cgx.config import config_from_dict, dump_config, load_config
from cgx.outputs import CONFIG_MARK
from cgx.run import main as run_main


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path under ``folder`` (links not followed) with a file's bytes: what must not change."""
    out = {}
    for p in sorted(folder.rglob("*")):
        rel = str(p.relative_to(folder))
        out[rel] = p.read_bytes() if p.is_file() and not p.is_symlink() else None
    return out


@pytest.fixture
def recipe(tmp_path, demo_data):
    """Write a tiny recipe training into ``run_dir`` (with ``changes``); its path."""

    def make(run_dir, changes: dict | None = None) -> Path:
        raw = merge(TINY_RECIPE, {"data": {"root": str(demo_data)}, "train": {"run_dir": str(run_dir)}})
        path = tmp_path / "recipe.yaml"
        path.write_text(yaml.safe_dump(merge(raw, changes or {})))
        return path

    return make


def another_run(tmp_path: Path) -> Path:
    """A run folder of someone else's: two (stand-in) checkpoints, an evaluation record."""
    other = tmp_path / "other"
    for step in (2, 4):
        ckpt = other / "checkpoints" / f"step_{step:08d}"
        ckpt.mkdir(parents=True)
        (ckpt / "train.pt").write_bytes(f"weights of step {step}".encode())
    (other / "eval").mkdir()
    (other / "eval" / "step_00000004.json").write_text("{}")
    return other


# --- case 1: links inside a run folder ---------------------------------------------------------

@pytest.mark.parametrize("part", ["checkpoints", "eval", "best", "tb", "logs"])
def test_a_linked_folder_of_the_run_is_refused_and_its_target_untouched(recipe, tmp_path, capsys, part):
    other = another_run(tmp_path)
    before = snapshot(other)
    run = tmp_path / "run"
    run.mkdir()
    (run / part).symlink_to(other / ("checkpoints" if part in ("checkpoints", "eval") else "eval"))
    for start_over in ("false", "true"):
        assert run_main([str(recipe(run)), f"train.start_over={start_over}"]) == 2
        one_line_error(capsys, str(run / part), "symbolic link")
        assert snapshot(other) == before  # nothing pruned, replaced or moved over there
        assert sorted(p.name for p in run.iterdir()) == [part]  # no LOCK, config.yaml or replaced-*


@pytest.mark.parametrize("name", ["config.yaml", "LOCK", "STOPPED", "log.jsonl"])
def test_a_linked_file_of_the_run_is_refused_and_the_users_file_kept(recipe, tmp_path, capsys, name):
    mine = tmp_path / "notes.txt"
    mine.write_text("my own notes\n")
    run = tmp_path / "run"
    run.mkdir()
    (run / name).symlink_to(mine)
    assert run_main([str(recipe(run))]) == 2
    one_line_error(capsys, str(run / name), "symbolic link")
    assert mine.read_text() == "my own notes\n" and (run / name).is_symlink()


def test_a_linked_checkpoint_inside_the_run_is_refused(recipe, tmp_path, capsys):
    other = another_run(tmp_path)
    before = snapshot(other)
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / "step_00000001").symlink_to(other / "checkpoints" / "step_00000002")
    assert run_main([str(recipe(run)), "train.keep=1"]) == 2
    one_line_error(capsys, str(run / "checkpoints" / "step_00000001"), "symbolic link")
    assert snapshot(other) == before


# --- case 3: a folder that is not a cgx run ----------------------------------------------------

@pytest.mark.parametrize("start_over", ["false", "true"])
def test_a_folder_with_a_users_files_is_not_a_run_folder(recipe, tmp_path, capsys, start_over):
    run = tmp_path / "mine"
    for name in ("STOPPED", "log.jsonl", "config.yaml", "logs/today.txt", "eval/scores.csv", "tb/x", "best/a.png"):
        (run / name).parent.mkdir(parents=True, exist_ok=True)
        (run / name).write_text(f"the user's {name}\n")
    before = snapshot(run)
    assert run_main([str(recipe(run)), f"train.start_over={start_over}"]) == 2
    one_line_error(capsys, f"train.run_dir {run}", "cgx did not make", "new or empty folder")
    assert snapshot(run) == before  # nothing deleted, replaced or moved into replaced-*


def test_an_empty_folder_and_one_with_only_a_stale_lock_are_new_run_folders(recipe, tmp_path, capsys):
    from cgx.run_dir import RunDir

    run = tmp_path / "run"
    run.mkdir()
    RunDir(run).claim("r.yaml")  # empty: fine
    (run / "LOCK").write_text('{"host": "h", "pid": 1, "started": "then"}')  # a run killed before its record
    RunDir(run).claim("r.yaml")
    (run / "config.yaml").write_text(f"{CONFIG_MARK}\ntrain: {{}}\n")  # cgx's record: a run of cgx's
    (run / "log.jsonl").write_text("")
    RunDir(run).claim("r.yaml")


def test_the_filesystem_root_or_home_is_never_a_run_folder(recipe, tmp_path, capsys, monkeypatch):
    from cgx.errors import ConfigError
    from cgx.run_dir import RunDir

    # The root through RunDir.claim itself, which the trainer calls first: a regression here must not
    # train into / (these tests may run as root).
    with pytest.raises(ConfigError, match="train.run_dir / is the filesystem root"):
        RunDir("/").claim("r.yaml")
    home = tmp_path / "home"
    home.mkdir()
    (home / ".bashrc").write_text("# mine\n")
    monkeypatch.setenv("HOME", str(home))
    with pytest.raises(ConfigError, match="home folder"):
        RunDir(tmp_path / "home" / ".." / "home").claim("r.yaml")
    assert run_main([str(recipe(home))]) == 2
    one_line_error(capsys, f"train.run_dir {home}", "home folder")
    assert [p.name for p in home.iterdir()] == [".bashrc"]


def test_a_run_folder_inside_the_training_images_is_refused(tmp_path, demo_data, capsys):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(demo_data, data)
    before = snapshot(data)
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(merge(TINY_RECIPE, {"data": {"root": str(data)},
                                                       "train": {"run_dir": str(data / "trainA" / "myrun")}})))
    assert run_main([str(path)]) == 2
    one_line_error(capsys, str(data / "trainA" / "myrun"), "inside the run's training images")
    assert snapshot(data) == before


# --- case 7: a run's config.yaml runs no code ----------------------------------------------------

def plant(tmp_path: Path, demo_data: Path) -> tuple[Path, Path]:
    """A handed-over run folder whose config.yaml (written by cgx) names a plugin file planted beside
    it and a relative run_dir; the file that plugin writes when imported."""
    run = tmp_path / "handed" / "run"
    run.mkdir(parents=True)
    ran = tmp_path / "planted-code-ran"
    (run / "evil.py").write_text(f"open({str(ran)!r}, 'w').write('ran')\n"
                                 "from cgx.plugins import hookimpl\n"
                                 "from cgx_plugins.generators.resnet import build_resnet\n"
                                 "@hookimpl\n"
                                 "def cgx_register_generators(register):\n"
                                 "    register('evil', build_resnet)\n")
    raw = merge(TINY_RECIPE, {"data": {"root": str(demo_data)}, "train": {"run_dir": "elsewhere/run"},
                              "plugins": ["evil.py"], "model": {"generator": {"name": "evil"}}})
    raw["model"]["generator"] = {"name": "evil", "ngf": 4, "n_blocks": 1}
    dump_config(config_from_dict(raw, where="<test>"), run / "config.yaml")
    assert (run / "config.yaml").read_text().startswith(CONFIG_MARK)
    return run, ran


def test_a_runs_config_yaml_imports_none_of_its_plugins(tmp_path, demo_data, capsys, monkeypatch):
    run, ran = plant(tmp_path, demo_data)
    monkeypatch.chdir(tmp_path)
    assert run_main([str(run / "config.yaml")]) == 2
    err = capsys.readouterr().err
    assert not ran.exists(), "the planted plugin file ran"
    assert "evil.py" in err and "not imported" in err and "--plugins" in err
    assert "unknown generator 'evil'" in err.splitlines()[-1]
    assert not (tmp_path / "elsewhere").exists()


def test_a_runs_config_yaml_trains_on_in_its_own_folder_and_loads_plugins_named_again(tmp_path, demo_data, capsys):
    from cgx.recipe_record import apply_command_line

    run, ran = plant(tmp_path, demo_data)
    path = str(run / "config.yaml")
    cfg = apply_command_line(load_config(path), path, [], [])
    assert cfg.train.run_dir == str(run.resolve()) and cfg.plugins == []
    cfg = apply_command_line(load_config(path), path, [str(run / "evil.py")], [])
    assert cfg.plugins == [str((run / "evil.py").resolve())]
    cfg = apply_command_line(load_config(path, ["train.run_dir=there"]), path, [], ["train.run_dir=there"])
    assert cfg.train.run_dir == "there"  # an override is the user's own choice
    assert not ran.exists()
    # an ordinary recipe keeps its own plugins and run_dir
    plain = tmp_path / "recipe.yaml"
    plain.write_text(yaml.safe_dump({"plugins": ["x.py"], "train": {"run_dir": "runs/x"}}))
    cfg = apply_command_line(load_config(plain), plain, [], [])
    assert cfg.plugins == ["x.py"] and cfg.train.run_dir == "runs/x"


# --- case 2: cgx eval -o -------------------------------------------------------------------------

def evaluate(run: Path, demo_data: Path, *extra: str) -> int:
    from cgx.cli import main as cli_main

    return cli_main(["eval", str(run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "--no-progress", *extra])


def test_eval_output_onto_a_users_file_or_beside_a_users_folder_is_refused(tiny_run, demo_data, tmp_path, capsys):
    mine = tmp_path / "results.json"
    mine.write_text("my results\n")
    assert evaluate(tiny_run, demo_data, "-o", str(mine)) == 2
    one_line_error(capsys, str(mine), "exists already", "--overwrite")
    mine.unlink()
    folder = tmp_path / "results"  # where the page of results.json would go
    (folder / "AtoB").mkdir(parents=True)
    (folder / "index.html").write_text("my own page")
    (folder / "notes.txt").write_text("mine")
    before = snapshot(folder)
    for extra in ((), ("--overwrite",)):
        assert evaluate(tiny_run, demo_data, "-o", str(mine), *extra) == 2
        one_line_error(capsys, str(folder), "not a results page cgx wrote")
        assert snapshot(folder) == before and not mine.exists()
    assert evaluate(tiny_run, demo_data, "-o", str(folder), "--overwrite") == 2
    one_line_error(capsys, str(folder), "is a folder")
    assert snapshot(folder) == before


def test_eval_output_never_onto_or_into_a_checkpoint(tiny_run, demo_data, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(tiny_run, run)
    (run / "checkpoints" / "step_00000001").mkdir()  # another checkpoint (a stand-in) beside the evaluated one
    (run / "checkpoints" / "step_00000001" / "train.pt").write_bytes(b"older weights")
    before = snapshot(run / "checkpoints")
    for name in ("step_00000002.json", "step_00000001.json", "step_00000002/scores.json", "step_00000001/x.json"):
        target = run / "checkpoints" / name
        assert evaluate(run, demo_data, "-o", str(target), "--overwrite") == 2
        one_line_error(capsys, "checkpoint")
        assert snapshot(run / "checkpoints") == before
    assert evaluate(run, demo_data, "-o", str(demo_data / "testA" / "x.json")) == 2
    one_line_error(capsys, "input folder")


def test_eval_into_a_linked_eval_folder_is_refused(tiny_run, demo_data, tmp_path, capsys):
    import shutil

    run, other = tmp_path / "run", tmp_path / "other"
    shutil.copytree(tiny_run, run)
    shutil.copytree(tiny_run, other)
    before = snapshot(other)
    (run / "eval").symlink_to(other / "checkpoints")  # the page of step 2 would land on other's step 2
    assert evaluate(run, demo_data) == 2
    one_line_error(capsys, str(run / "eval"), "symbolic link")
    assert snapshot(other) == before


# --- case 3: cgx shards over an existing shard set -----------------------------------------------

def test_shards_over_an_existing_set_refuse_and_replace_only_cgxs_with_overwrite(demo_data, tmp_path, capsys):
    from cgx.cli import main as cli_main

    out = tmp_path / "shards"
    src = tmp_path / "src"
    (src / "trainA").mkdir(parents=True)
    for p in sorted((demo_data / "trainA").iterdir())[:4]:
        (src / "trainA" / p.name).write_bytes(p.read_bytes())

    def shards(*extra: str) -> int:
        return cli_main(["shards", str(src), str(out), "--workers", "1", "--no-progress", *extra])

    assert shards("--max-count", "1") == 0  # 4 shards
    capsys.readouterr()
    before = snapshot(out)
    assert shards("--max-count", "2") == 2
    one_line_error(capsys, "shard set trainA exists already", str(out), "--overwrite")
    assert snapshot(out) == before
    assert shards("--max-count", "2", "--overwrite") == 0  # cgx's own set: replaced, its stale shards gone
    assert sorted(p.name for p in out.iterdir()) == ["trainA-000000.tar", "trainA-000001.tar", "trainA.json"]
    capsys.readouterr()
    # a set cgx did not write (a user's index, or a shard its index does not name) is never replaced
    (out / "trainA-000007.tar").write_bytes(b"the user's own tar")
    before = snapshot(out)
    assert shards("--overwrite") == 2
    one_line_error(capsys, str(out / "trainA-000007.tar"), "not a shard of the set")
    (out / "trainA-000007.tar").unlink()
    (out / "trainA.json").write_text('{"mine": true}')
    assert shards("--overwrite") == 2
    one_line_error(capsys, str(out / "trainA.json"), "not a shard index cgx wrote")
    assert (out / "trainA.json").read_text() == '{"mine": true}'
