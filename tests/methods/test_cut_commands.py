"""`cgx translate`, `cgx grid` and `cgx eval` on a CUT run: A -> B works; B -> A (which CUT does not
learn) is a one-line named error; eval scores A -> B with cycle L1 reported as not available."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from eval_fixtures import use_weights, weights  # noqa: E402,F401 -- fixtures

from cgx.cli import main as cli_main  # noqa: E402


@pytest.fixture(scope="module")
def cut_run(tmp_path_factory, demo_data):
    from conftest import TINY_RECIPE, merge

    from cgx.run import main as run_main

    folder = tmp_path_factory.mktemp("cut_run")
    recipe = folder / "cut.yaml"
    recipe.write_text(yaml.safe_dump(merge(TINY_RECIPE, {
        "method": {"name": "cut", "nce_layers": [0, 4, 8], "num_patches": 16},
        "data": {"root": str(demo_data)},
        "train": {"run_dir": str(folder / "run"), "steps": 2, "ckpt_every": 2, "image_every": 0}})))
    assert run_main([str(recipe)]) == 0
    return folder / "run"


def one_line_error(capsys, *names: str) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for name in names:
        assert name in err, err
    return err


def test_translate_a_to_b_and_refuse_b_to_a(cut_run, demo_data, tmp_path, capsys):
    out = tmp_path / "AtoB"
    assert cli_main(["translate", str(cut_run), str(demo_data / "testA"), str(out), "--no-progress"]) == 0
    assert len(list(out.glob("*.png"))) == 2
    capsys.readouterr()
    code = cli_main(["translate", str(cut_run), str(demo_data / "testB"), str(tmp_path / "BtoA"),
                     "--direction", "BtoA", "--no-progress"])
    assert code != 0
    one_line_error(capsys, "BtoA", "cut", "--direction AtoB")
    assert not (tmp_path / "BtoA").exists() or not list((tmp_path / "BtoA").iterdir())


def test_grid_shows_the_one_direction(cut_run, demo_data, tmp_path):
    from PIL import Image

    out = tmp_path / "grid.png"
    assert cli_main(["grid", str(cut_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "--n", "2", "--output", str(out)]) == 0
    w, h = Image.open(out).size
    assert w < 3 * 32 + 4 * 4  # input | translated: two columns


def test_eval_scores_a_to_b_without_cycle(cut_run, demo_data, use_weights, tmp_path, capsys):
    record = tmp_path / "scores.json"
    args = ["eval", str(cut_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"), "--no-progress"]
    assert cli_main([*args, "--output", str(record)]) == 0
    out = capsys.readouterr().out
    scores = json.loads(record.read_text())["scores"]
    assert list(scores) == ["AtoB"]
    assert scores["AtoB"]["FID"] is not None and scores["AtoB"]["KID_mean"] is not None
    assert scores["AtoB"]["cycle_L1"] is None and "BtoA" in scores["AtoB"]["cycle_L1_skipped"]
    assert "cycle L1 not available" in out
    page = tmp_path / "scores"  # beside --output: input | translated rows, no reconstruction
    assert sorted(f.name for f in (page / "AtoB").iterdir())[:2] == ["000_input.png", "000_translated.png"]
    assert not list(page.rglob("*reconstructed*")) and not (page / "BtoA").exists()
    assert "A → B</h2>" in (page / "index.html").read_text()
    code = cli_main([*args, "--direction", "BtoA", "--output", str(tmp_path / "b.json")])
    assert code != 0
    one_line_error(capsys, "BtoA", "cut")
