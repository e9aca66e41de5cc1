"""cgx sweep's grid: expansion, point names, and every bad grid refused in one line before anything runs."""
from __future__ import annotations

import pytest
import yaml
from conftest import TINY_RECIPE, merge

from cgx.cli import main as cli
from cgx.errors import UsageError
from cgx.sweep.folder import SweepDir
from cgx.sweep.grid import MAX_NAME, Point, expand, parse_grid, parse_seeds, point_name, split_values


def test_values_split_on_top_level_commas_only():
    assert split_values("a, b") == ["a", "b"]
    assert split_values("[0.5,0.999],[0.0, 0.99]") == ["[0.5,0.999]", "[0.0, 0.99]"]
    assert split_values("{name: x, p: 1},'q,r',\"s,t\"") == ["{name: x, p: 1}", "'q,r'", "\"s,t\""]


def test_every_combination_in_grid_order_seeds_last():
    points = expand([parse_grid("method.name=cyclegan,cut"), parse_grid("optim.lr=1e-4,2e-4,3e-4"),
                     parse_seeds("1,2")])
    assert len(points) == 12
    assert points[0].args == ["method.name=cyclegan", "optim.lr=1e-4", "train.seed=1"]
    assert points[1].args == ["method.name=cyclegan", "optim.lr=1e-4", "train.seed=2"]
    assert points[-1].args == ["method.name=cut", "optim.lr=3e-4", "train.seed=2"]
    assert len({p.name for p in points}) == 12
    configs = {p.config_name for p in points}
    assert len(configs) == 6 and "method.name=cut,optim.lr=2e-4" in configs
    assert [p.seed for p in points[:2]] == ["1", "2"]
    assert expand([]) == [Point(())] and Point(()).name == "base"


def test_names_are_escaped_file_names_and_stable():
    assert point_name([("method.name", "cut"), ("train.seed", "1")]) == "method.name=cut,train.seed=1"
    odd = point_name([("data.root", "../x/y z"), ("model.generator.name", "é%\n")])
    assert odd == "data.root=..%2Fx%2Fy%20z,model.generator.name=%C3%A9%25%0A"
    assert "/" not in odd and "\n" not in odd
    # a value holding the separator cannot make two points read alike
    assert point_name([("a", "1,b=2")]) != point_name([("a", "1"), ("b", "2")])


def test_long_names_are_shortened_and_stay_distinct():
    one = point_name([("optim.betas", "[" + "0.5," * 60 + "1]")])
    two = point_name([("optim.betas", "[" + "0.5," * 59 + "0.6,1]")])
    assert len(one) <= MAX_NAME + 16 and len(two) <= MAX_NAME + 16
    assert one != two and one == point_name([("optim.betas", "[" + "0.5," * 60 + "1]")])


@pytest.mark.parametrize("grid, says", [
    ("method.name", "not of the form KEY=v1,v2"),
    ("=cut", "is not a recipe key"),
    ("optim..lr=1", "is not a recipe key"),
    ("optim.lr=1e-4,,2e-4", "optim.lr: an empty value"),
    ("optim.lr=1e-4,1e-4", "optim.lr: the value '1e-4' is given twice"),
    ("train.run_dir=a,b", "the sweep sets train.run_dir itself"),
])
def test_bad_grids_name_the_key_and_what_is_accepted(grid, says):
    with pytest.raises(UsageError, match=says.replace("(", r"\(").replace(".", r"\.")):
        parse_grid(grid)


def test_bad_seeds_and_a_key_given_twice():
    with pytest.raises(UsageError, match="'x' is not a whole number"):
        parse_seeds("1,x")
    with pytest.raises(UsageError, match="train.seed is given twice"):
        expand([parse_grid("train.seed=1,2"), parse_seeds("3")])


@pytest.fixture
def recipe(tmp_path, demo_data):
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(merge(TINY_RECIPE, {"data": {"root": str(demo_data), "source": "folder"}})))
    return path


@pytest.mark.parametrize("grid, says", [
    ("optim.lr=0.0002,fast", "grid point optim.lr=fast: command-line override 'optim.lr=fast': optim.lr must be a number"),
    ("method.name=cyclegan,nope", "override 'method.name=nope': method: unknown method 'nope'; available: cut, cyclegan"),
    ("model.generator.nblocks=2", "nblocks"),
])
def test_every_point_is_checked_before_any_runs(recipe, tmp_path, capsys, grid, says):
    """The bad value is the second of the grid: nothing at all is written, the first point included."""
    out = tmp_path / "sweep"
    assert cli(["sweep", str(recipe), "--grid", grid, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cgx: error: ") and says in err and err.count("\n") == 1, err
    assert not out.exists()


def test_missing_test_images_are_named_before_anything_runs(recipe, tmp_path, capsys):
    out = tmp_path / "sweep"
    assert cli(["sweep", str(recipe), "--out", str(out), "--eval-pairs", str(tmp_path / "nothere")]) == 2
    err = capsys.readouterr().err
    assert "nothere is not a folder; give --eval-pairs FOLDER, or --no-eval" in err and not out.exists()


def test_the_sweep_folder_is_claimed_like_a_run_folder(recipe, tmp_path, capsys):
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert cli(["sweep", str(recipe), "--out", str(foreign), "--no-eval"]) == 2
    assert "is a folder cgx did not make: it holds notes.txt" in capsys.readouterr().err
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    target = tmp_path / "target"
    target.mkdir()
    (tmp_path / "link").symlink_to(target)
    assert cli(["sweep", str(recipe), "--out", str(tmp_path / "link"), "--no-eval"]) == 2
    assert "is a symbolic link" in capsys.readouterr().err and not any(target.iterdir())
    other = tmp_path / "other.yaml"
    other.write_text(recipe.read_text())
    made = SweepDir(tmp_path / "made")
    made.write_record({"recipe": str(other.resolve())})
    assert cli(["sweep", str(recipe), "--out", str(made.root), "--no-eval"]) == 2
    assert f"holds the sweep of recipe {other.resolve()}" in capsys.readouterr().err


def test_a_second_sweep_on_the_folder_is_refused_while_one_runs(recipe, tmp_path, capsys):
    from cgx import file_lock

    made = SweepDir(tmp_path / "made")
    made.write_record({"recipe": str(recipe.resolve())})
    fd = file_lock.take(made.root / "LOCK", RuntimeError, RuntimeError)
    file_lock.write_holder(fd, "pid 4242 on elsewhere")
    try:
        assert cli(["sweep", str(recipe), "--out", str(made.root), "--no-eval"]) == 2
    finally:
        file_lock.release(made.root / "LOCK", fd)
    assert "is in use by another cgx sweep (pid 4242 on elsewhere)" in capsys.readouterr().err
    assert not made.runs.exists()
