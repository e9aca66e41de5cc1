"""Loggers (``logging.backends``): every event reaches every built-in logger once, read back through each
one's own reader (TensorBoard's loader, the jsonl file, W&B's offline run files, MlflowClient); a resumed
run holds each step once and continues the same W&B / MLflow run; a missing package is one line naming
the extra; a logger that fails (an MLflow server killed mid-run) never stops training."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from conftest import TINY_RECIPE, merge
from log_readers import read

from cgx.config import ConfigError, load_config
from cgx.plugins import Registry, hookimpl
from cgx.plugins.kinds import KINDS
from cgx.plugins.types import EVENTS, LogRun
from cgx.run import main as run_main
from cgx.run_dir import RunDir
from cgx.train import components
from cgx.train.logger import RunLog
from cgx.train.trainer import Trainer

BUILTIN = ("tensorboard", "jsonl", "wandb", "mlflow")
# W&B runs a service process (wandb-core); importing MLflow runs `uname -p`: their tests start processes.
MARKS = {"wandb": [pytest.mark.multiprocess], "mlflow": [pytest.mark.multiprocess, pytest.mark.slow]}
GRID = "A->B->A (real, fake, reconstructed)"


def backend(name: str):
    return pytest.param(name, marks=MARKS.get(name, []), id=name)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """W&B offline and quiet; no MLflow server from the environment."""
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def key(backend: str, tag: str) -> str:
    """A tag as the backend holds it (MLflow keeps only some characters)."""
    if backend != "mlflow":
        return tag
    from cgx_plugins.loggers.mlflow_log import key_name

    return key_name(tag)


# --- the kind and the recipe -------------------------------------------------------------------------


def test_logger_kind_takes_a_list_and_every_builtin_is_registered():
    kind = KINDS["logger"]
    assert kind.hook == "cgx_register_loggers" and kind.many and kind.recipe_keys == ("logging.backends",)
    assert set(BUILTIN) <= set(Registry().available("logger"))
    cfg = load_config(None)
    assert [b.name for b in cfg.logging.backends] == ["tensorboard"]  # the default
    cfg = load_config(None, ["logging.backends=[jsonl, {name: wandb, project: p, mode: offline}]"])
    sections = components.component_sections(cfg)
    assert sections["logging.backends[1]"][1].args == {"project": "p", "mode": "offline"}
    assert cfg.to_dict()["logging"] == {"backends": [{"name": "jsonl"}, {"name": "wandb", "project": "p",
                                                                         "mode": "offline"}]}


@pytest.mark.parametrize("override, words", [
    ("logging.backends=tensorboard", ["logging.backends must be a list", "[tensorboard, jsonl]"]),
    ("logging.backends=[jsonl, jsonl]", ["logging.backends[1]", "jsonl is named twice"]),
    ("logging.backends=[{project: p}]", ["logging.backends[0].name"]),
    ("logging.backends=[jsonl, tensorbord]", ["logging.backends[1]", "unknown logger 'tensorbord'", "tensorboard"]),
    ("logging.backends=[{name: wandb, projcet: p}]", ["logging.backends[0]", "'projcet'", "project"]),
    ("logging.backends=[{name: wandb, mode: online2}]", ["logging.backends[0]", "'mode'", "'offline'"]),
])
def test_bad_logging_sections_are_named(override, words):
    with pytest.raises(ConfigError) as e:
        cfg = load_config(None, [override])
        components.check_components(cfg, Registry())
    assert all(w in str(e.value) for w in words), str(e.value)


@pytest.mark.parametrize("package", ["wandb", "mlflow"])
def test_a_missing_package_is_one_line_naming_the_extra(package, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, package, None)  # as if it were not installed
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({"train": {"run_dir": str(tmp_path / "run")},
                                      "logging": {"backends": ["tensorboard", package]}}))
    assert run_main([str(recipe)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    from cgx.extras import install_hint  # from the checkout: pip install -e '.[wandb]' (tests/package checks both)

    assert install_hint(package) in err and f"[{package}]'" in err and "logging.backends[1]" in err, err
    assert not (tmp_path / "run" / "checkpoints").exists()  # stopped before any work


def test_start_over_moves_every_logger_s_files_aside(tmp_path):
    run = RunDir(tmp_path)
    for folder in (run.tensorboard, run.jsonl_images, run.wandb, run.mlflow, run.logger_dir("mine")):
        folder.mkdir(parents=True)
    run.jsonl.write_text("{}\n")
    target = run.move_aside()
    assert sorted(p.name for p in target.iterdir()) == ["log.jsonl", "log_images", "logs", "mlflow", "tb", "wandb"]
    assert [p.name for p in tmp_path.iterdir()] == [target.name]


# --- every event, every logger -----------------------------------------------------------------------


def play(run: Path, loggers, start: int = 0, steps=(1, 2, 3)) -> None:
    """The engine's events for ``steps`` (scalars each step, a grid at even steps, a checkpoint and a best
    at the last), as ``Trainer.fit`` and the evaluation send them."""
    registry = Registry()
    built = [(name, registry.create("logger", name)) for name in loggers]
    log = RunLog(built, LogRun(RunDir(run), run.name, start, 3), progress=False)
    if start == 0:
        log.recipe({"train": {"steps": 3, "run_dir": str(run)}, "model": {"generator": {"name": "resnet"}}})
    for step in steps:
        log.scalars(step, {"loss/G/gan_AtoB": 1.0 / step, "lr/generators": 2e-4, "perf/images_per_s": 10.0})
        if step % 2 == 0:
            log.images(step, GRID, [torch.zeros(2, 3, 8, 8), torch.ones(2, 1, 8, 8)])
    log.event(steps[-1], "checkpoint", path=str(run / "checkpoints" / f"step_{steps[-1]:08d}"))
    log.event(steps[-1], "best", metric="FID_AtoB", value=12.5, checkpoint=str(run / "best" / "step"))
    log.close()


@pytest.mark.parametrize("name", [backend(b) for b in BUILTIN])
def test_every_event_reaches_every_logger_once(name, tmp_path):
    run = tmp_path / "run"
    play(run, [name])
    got = read(name, run)
    assert got["recipe"] == 1
    assert got["scalars"] == {key(name, t): [1, 2, 3] for t in ("loss/G/gan_AtoB", "lr/generators", "perf/images_per_s")}
    assert got["images"] == {key(name, GRID): [2]}
    assert set(got["events"]) == set(EVENTS) and all(steps == [3] for steps in got["events"].values())
    assert got["fields"]["checkpoint"]["path"] == str(run / "checkpoints" / "step_00000003")
    best = got["fields"]["best"]
    assert best["metric"] == "FID_AtoB" and float(best["value"]) == 12.5 and best["checkpoint"] == str(run / "best/step")
    if name in ("wandb", "mlflow"):  # a launch at step 0 (no checkpoint kept) is a new run on the service
        record = RunDir(run).logger_run(run / name)
        first = yaml.safe_load(record.read_text())["id"]
        play(run, [name], steps=(1,))
        assert yaml.safe_load(record.read_text())["id"] != first


def test_the_grid_is_rgb_uint8_with_a_row_per_batch():
    from cgx.train.logger import image_grid

    grid = image_grid([torch.full((3, 3, 4, 4), -1.0), torch.full((2, 1, 4, 4), 1.0)])  # grey shown as RGB
    assert grid.dtype == np.uint8 and grid.shape == (2 + 2 * 6, 2 + 2 * 6, 3)  # make_grid pads by 2
    assert grid[2:6, 2:6].max() == 0 and grid[8:12, 2:6].min() == 255


class Failing:
    def __init__(self, fail_in: str) -> None:
        self.fail_in, self.calls = fail_in, []

    def __getattr__(self, method):
        def call(*args):
            self.calls.append(method)
            if method == self.fail_in:
                raise ConnectionError("server gone\nsecond line")
        return call


@pytest.mark.parametrize("fail_in", ["open", "scalars"])
def test_a_failing_logger_is_warned_once_and_left_out(fail_in, tmp_path, capsys):
    bad, good = Failing(fail_in), Failing("never")
    log = RunLog([("bad", bad), ("good", good)], LogRun(RunDir(tmp_path), "run", 0, 4), progress=False)
    for step in (1, 2, 3):
        log.scalars(step, {"x": 1.0})
    log.event(3, "checkpoint", path="p")
    log.close()
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and f"logger bad failed in {fail_in}() (ConnectionError: server gone second line)" in err
    assert "logging to good" in err
    assert good.calls == ["open", "scalars", "scalars", "scalars", "event", "close"]
    assert bad.calls == ["open", "close"] if fail_in == "open" else ["open", "scalars", "close"]


def test_jsonl_resumed_at_a_step_drops_later_records_and_a_torn_line(tmp_path):
    import json

    from cgx_plugins.loggers.jsonl_log import JsonlLogger

    run = RunDir(tmp_path)
    lines = [json.dumps({"step": s, "kind": "scalars", "values": {"x": s}}) for s in range(7)]
    run.jsonl.write_text("\n".join(lines) + '\n{"step": 7, "kind": "sca')  # killed mid-line
    logger = JsonlLogger()
    logger.open(LogRun(run, "run", 3, 10))
    logger.scalars(4, {"x": 4.0})
    logger.close()
    assert [json.loads(line)["step"] for line in run.jsonl.read_text().splitlines()] == [0, 1, 2, 3, 4]
    logger.open(LogRun(run, "run", 0, 10))  # a run that starts at 0 again (no checkpoint was kept)
    logger.close()
    assert run.jsonl.read_text() == ""


@pytest.mark.parametrize("text", ["[1, 2", "[1, 2]", "[" * 100_000, '{"id": 5, "held": {"x": "7"}}'])
def test_a_damaged_run_record_is_a_new_run(text, tmp_path, capsys):
    from cgx_plugins.loggers.run_record import RunRecord

    path = tmp_path / "cgx-run.json"
    path.write_text(text)
    record = RunRecord.load(path)
    assert record.get("id") is None and record.new("x", 0)
    if not text.startswith("{"):
        assert f"{path} is not readable" in capsys.readouterr().err
    record.start(id="abc")
    record.note(["x"], 5)
    again = RunRecord.load(path)
    assert again.get("id") == "abc" and not again.new("x", 5) and again.new("x", 6)


# --- a short run with a resume in between -------------------------------------------------------------


def short_run(root: Path, demo_data: Path, loggers, registry_plugins=()) -> Path:
    """6 steps (scalars every step, grids every 2, checkpoints every 3); then the step-6 checkpoint is
    removed, as if the run had died after logging step 6 but before its checkpoint was complete, and the
    run resumes from step 3 to step 8: steps 4-6 are logged again."""
    recipe = root / "r.yaml"
    recipe.write_text(yaml.safe_dump(merge(TINY_RECIPE, {
        "data": {"root": str(demo_data)},
        "train": {"run_dir": str(root / "run"), "steps": 6, "log_every": 1, "image_every": 2, "ckpt_every": 3},
        "logging": {"backends": list(loggers)}})))

    def launch(*overrides):
        registry = Registry()
        for plugin in registry_plugins:
            registry.add_plugin(plugin, source="test")
        trainer = Trainer(load_config(recipe, list(overrides)), registry=registry)
        try:
            trainer.fit()
        finally:
            trainer.close()

    launch()
    shutil.rmtree(root / "run" / "checkpoints" / "step_00000006")
    launch("train.steps=8")
    return root / "run"


SCALARS = ("loss/G/gan_AtoB", "loss/D/A", "lr/generators", "lr/discriminators", "perf/images_per_s",
           "perf/step_time_s", "perf/data_wait_s", "epoch")
GRIDS = ("A->B->A (real, fake, reconstructed)", "B->A->B (real, fake, reconstructed)")


def assert_each_step_once(name: str, got: dict, run: Path) -> None:
    for tag in SCALARS:
        assert got["scalars"][key(name, tag)] == list(range(1, 9)), (name, tag)
    assert {t: got["images"][key(name, t)] for t in GRIDS} == {t: [2, 4, 6, 8] for t in GRIDS}, name
    assert got["events"]["checkpoint"] == [3, 6, 8], name
    assert got["fields"]["checkpoint"]["path"] == str((run / "checkpoints" / "step_00000008").resolve())
    assert got["recipe"] == 1, name


@pytest.mark.slow
def test_a_resumed_run_holds_each_step_once_tensorboard_jsonl(tmp_path, demo_data):
    run = short_run(tmp_path, demo_data, ["tensorboard", "jsonl"])
    for name in ("tensorboard", "jsonl"):
        assert_each_step_once(name, read(name, run), run)


@pytest.fixture(scope="module")
def four_backend_run(tmp_path_factory, demo_data):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WANDB_MODE", "offline")
        mp.setenv("WANDB_SILENT", "true")
        mp.delenv("MLFLOW_TRACKING_URI", raising=False)
        return short_run(tmp_path_factory.mktemp("four"), demo_data, BUILTIN)


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.parametrize("name", BUILTIN)
def test_one_run_logged_to_all_four_with_a_resume(name, four_backend_run):
    got = read(name, four_backend_run)
    assert_each_step_once(name, got, four_backend_run)
    counts = {"scalar steps": len(got["scalars"][key(name, "loss/G/gan_AtoB")]),
              "series": len(got["scalars"]), "grid steps": len(got["images"][key(name, GRIDS[0])]),
              "checkpoint events": len(got["events"]["checkpoint"]), "recipe": got["recipe"]}
    print(f"\n{name}: {counts}")
    if name == "wandb":  # one W&B run (one id), a file per launch, to `wandb sync` in order
        assert len(got["ids"]) == 1 and got["launches"] == 2
        assert (four_backend_run / "wandb" / "cgx-run.json").is_file()
    if name == "mlflow":  # one MLflow run, continued
        assert got["runs"] == 1 and got["status"] == "FINISHED"


# --- a real MLflow server that goes away mid-run -------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class KillAt:
    """A logger plugin that kills a process when step ``at`` is logged (listed before mlflow: the
    server is gone when mlflow logs that step)."""

    def __init__(self, proc, at: int) -> None:
        self.proc, self.at = proc, at

    @hookimpl
    def cgx_register_loggers(self, register):
        register("kill_server", lambda: self)

    def open(self, run): ...
    def recipe(self, config): ...
    def image(self, step, tag, grid): ...
    def event(self, step, name, fields): ...
    def close(self): ...

    def scalars(self, step, values):
        if step == self.at:
            stop_server(self.proc)


def stop_server(proc) -> None:
    """Kill the server and its workers (its own process group: `mlflow server` runs uvicorn in a child)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


@pytest.mark.slow
@pytest.mark.multiprocess
@pytest.mark.long
def test_an_mlflow_server_that_goes_away_never_stops_training(tmp_path, demo_data, monkeypatch, capfd):
    store = f"sqlite:///{tmp_path / 'server.db'}"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", store, "--default-artifact-root", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, "OMP_NUM_THREADS": "1"},
        start_new_session=True)
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except OSError:
                assert server.poll() is None and time.time() < deadline, "mlflow server did not start"
                time.sleep(0.5)
        monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://127.0.0.1:{port}")
        # launch 1 logs steps 1-6 to the server; launch 2 resumes from 3 and kills the server at step 7
        run = short_run(tmp_path, demo_data, ["jsonl", "tensorboard", "kill_server", "mlflow"],
                        registry_plugins=[KillAt(server, at=7)])
    finally:
        stop_server(server)
    err = capfd.readouterr().err
    assert err.count("logger mlflow failed") == 1, err
    assert (run / "checkpoints" / "step_00000008").is_dir()  # trained to the end
    for name in ("jsonl", "tensorboard"):  # the local logs hold every step
        assert_each_step_once(name, read(name, run), run)
    got = read("mlflow", run, uri=store)  # the server's store, read directly: one run, steps 1-6 once each
    assert got["runs"] == 1 and got["recipe"] == 1
    assert got["scalars"]["loss/G/gan_AtoB"] == [1, 2, 3, 4, 5, 6]
    assert got["events"]["checkpoint"] == [3, 6]


@pytest.mark.multiprocess
@pytest.mark.slow
def test_mlflow_with_a_sqlite_uri_keeps_its_artifacts_in_the_run_folder(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'elsewhere.db'}")
    run = tmp_path / "run"
    play(run, ["mlflow"])
    assert not (tmp_path / "mlruns").exists()  # MLflow's default artifact root: the working directory
    assert any(p.suffix == ".png" for p in (run / "mlflow" / "artifacts").rglob("*"))
