"""cgx sweep for real: tiny runs trained and evaluated as subprocesses, the table's arithmetic against
the runs' own evaluation records, the results page, finished points skipped, an interrupted one
resumed, and one failing point reported without stopping the others."""
from __future__ import annotations

import csv
import json
import statistics
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY_RECIPE, merge

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "eval"))
from eval_fixtures import weights  # noqa: E402,F401 -- fixture

from cgx.cli import main as cli  # noqa: E402
from cgx.eval import inception  # noqa: E402
from cgx.sweep.grid import point_name  # noqa: E402

pytestmark = [pytest.mark.multiprocess, pytest.mark.slow, pytest.mark.long]
GRID = ["--grid", "optim.lr=0.0002,0.0001", "--seeds", "1,2"]


def tiny_recipe(folder: Path, demo_data: Path) -> Path:
    path = folder / "tiny.yaml"
    path.write_text(yaml.safe_dump(merge(TINY_RECIPE, {
        "data": {"root": str(demo_data), "source": "folder"},
        "train": {"steps": 2, "ckpt_every": 1, "log_every": 1, "image_every": 0},
        "logging": {"backends": ["jsonl"]}})))
    return path


@pytest.fixture(scope="module")
def swept(tmp_path_factory, demo_data, weights):  # noqa: F811
    tmp = tmp_path_factory.mktemp("sweep")
    recipe, out = tiny_recipe(tmp, demo_data), tmp / "sweep"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(inception.ENV_VAR, str(weights.path))
        code = cli(["sweep", str(recipe), *GRID, "--out", str(out), "--parallel", "2", "--max-images", "2"])
    return recipe, out, code


def run_record(run: Path) -> dict:
    return json.loads((run / "eval" / "step_00000002.json").read_text())


def test_every_point_is_a_run_trained_and_evaluated(swept):
    _, out, code = swept
    assert code == 0
    names = ["optim.lr=0.0002,train.seed=1", "optim.lr=0.0002,train.seed=2", "optim.lr=0.0001,train.seed=1",
             "optim.lr=0.0001,train.seed=2"]
    assert sorted(p.name for p in (out / "runs").iterdir()) == sorted(names)
    for name in names:
        config = yaml.safe_load((out / "runs" / name / "config.yaml").read_text())
        lr, seed = name.split(",")
        assert config["optim"]["lr"] == float(lr.split("=")[1]) and config["train"]["seed"] == int(seed.split("=")[1])
        assert config["train"]["run_dir"] == str(out / "runs" / name)
        assert (out / "runs" / name / "checkpoints" / "step_00000002").is_dir()
        assert run_record(out / "runs" / name)["scores"]["AtoB"]["n_translated"] == 2


def test_table_is_the_mean_min_max_of_the_runs_records(swept):
    _, out, _ = swept
    table = json.loads((out / "results.json").read_text())
    assert [c["name"] for c in table["configurations"]] == ["optim.lr=0.0002", "optim.lr=0.0001"]
    rows = {(r["configuration"], r["metric"]): r for r in csv.DictReader(open(out / "results.csv"))}
    md = (out / "results.md").read_text()
    for config in table["configurations"]:
        runs = [out / "runs" / f"{config['name']},train.seed={s}" for s in (1, 2)]
        records = [run_record(r) for r in runs]
        for metric in ("AtoB FID", "BtoA KID_mean", "AtoB cycle_L1", "BtoA cycle_L1"):
            direction, key = metric.split()
            values = [r["scores"][direction][key] for r in records]
            got = config["metrics"][metric]
            assert got["n"] == 2 and got["min"] == min(values) and got["max"] == max(values)
            assert got["mean"] == pytest.approx(sum(values) / 2, rel=1e-12)
            assert got["std"] == pytest.approx(statistics.stdev(values), rel=1e-12)
            row = rows[(config["name"], metric)]
            assert float(row["mean"]) == got["mean"] and row["seeds"] == "1,2"
            assert f"{got['mean']:.4g} ({min(values):.4g}..{max(values):.4g})" in md
        # s/step: the median of each run's logged step times, the first (start-up) left out
        times = []
        for run in runs:
            logged = [r["values"]["perf/step_time_s"] for r in map(json.loads, open(run / "log.jsonl"))
                      if r["kind"] == "scalars" and "perf/step_time_s" in r["values"]]
            times.append(statistics.median(logged[1:]))
        assert config["metrics"]["s/step"]["mean"] == pytest.approx(sum(times) / 2, rel=1e-12)
    assert "KID_std" not in md and "n_translated" not in md


def test_results_page_links_each_runs_page(swept):
    _, out, _ = swept
    page = (out / "index.html").read_text()
    for run in (out / "runs").iterdir():
        link = f"runs/{run.name}/eval/step_00000002/index.html"
        assert f'href="{link}"' in page and (out / link).is_file()


def test_run_again_skips_finished_points_and_resumes_an_interrupted_one(swept, weights, monkeypatch, capsys):  # noqa: F811
    """Last in this module: it changes the sweep. One run loses its last checkpoint (as if killed
    after step 1): it alone is resumed; its evaluation record of step 2, written by the same eval
    command, stands (the resumed step 2 is the same: cgx's resume is exact); the others are not touched."""
    recipe, out, _ = swept
    cut = out / "runs" / "optim.lr=0.0001,train.seed=2"
    import shutil

    shutil.rmtree(cut / "checkpoints" / "step_00000002")
    kept = out / "runs" / "optim.lr=0.0002,train.seed=1" / "checkpoints" / "step_00000002"
    kept_mtime, kept_log = kept.stat().st_mtime_ns, (out / "logs" / "optim.lr=0.0002,train.seed=1.log").read_text()
    monkeypatch.setenv(inception.ENV_VAR, str(weights.path))
    capsys.readouterr()
    assert cli(["sweep", str(recipe), *GRID, "--out", str(out), "--max-images", "2"]) == 0
    said = capsys.readouterr().out
    assert said.count("finished before (skipped)") == 3
    assert "cgx: sweep: optim.lr=0.0001,train.seed=2: resumed\n" in said
    assert kept.stat().st_mtime_ns == kept_mtime
    assert (out / "logs" / "optim.lr=0.0002,train.seed=1.log").read_text() == kept_log
    assert "resumed from" in (out / "logs" / "optim.lr=0.0001,train.seed=2.log").read_text()
    assert (cut / "checkpoints" / "step_00000002").is_dir() and (cut / "eval" / "step_00000002.json").is_file()


def test_one_failing_point_is_reported_and_the_others_go_on(tmp_path, demo_data, capsys):
    recipe, out = tiny_recipe(tmp_path, demo_data), tmp_path / "sweep"
    missing = tmp_path / "no_such_data"
    code = cli(["sweep", str(recipe), "--grid", f"data.root={missing},{demo_data}", "--out", str(out), "--no-eval"])
    said = capsys.readouterr().out
    assert code == 1
    bad, good = point_name([("data.root", str(missing))]), point_name([("data.root", str(demo_data))])
    line = next(line for line in said.splitlines() if line.startswith(f"cgx: sweep: {bad}: failed: training: "))
    assert str(missing) in line and f"(log: {out / 'logs' / bad}.log)" in line
    assert f"cgx: sweep: {good}: trained" in said
    assert (out / "runs" / good / "checkpoints" / "step_00000002").is_dir()
    table = json.loads((out / "results.json").read_text())
    assert [f["name"] for f in table["failed"]] == [bad] and str(missing) in table["failed"][0]["reason"]
    assert [c["name"] for c in table["configurations"] if c["points"]] == [good]
    assert f"Failed points (not in the table):\n- {bad}: training: " in (out / "results.md").read_text()
