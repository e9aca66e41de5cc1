"""Evaluation during training: the eval section's scalars, eval records and best/ checkpoint, and
a resumed run keeps the best score."""
from __future__ import annotations

import json

import pytest
from eval_fixtures import use_weights, weights  # noqa: F401 -- fixtures

from cgx.config import ConfigError, load_config
from cgx.eval.periodic import read_best
from cgx.plugins import Registry
from cgx.train.trainer import Trainer

EVAL = {"train": {"steps": 2, "ckpt_every": 2, "log_every": 2, "image_every": 0},
        "eval": {"every": 2, "metric": "FID_mean"}, "logging": {"backends": ["tensorboard", "jsonl"]}}


def train(recipe, *overrides):
    trainer = Trainer(load_config(recipe, list(overrides)), registry=Registry())
    try:
        before = trainer.evaluation.best
        trainer.fit()
        return before, trainer.evaluation.best
    finally:
        trainer.close()


def records(run):
    return {int(p.stem[5:]): json.loads(p.read_text()) for p in sorted((run / "eval").glob("step_*.json"))}


def best_events(run):
    """The ``best`` events the jsonl logger got: step -> fields."""
    lines = (run / "log.jsonl").read_text().splitlines()
    return {r["step"]: r["fields"] for r in map(json.loads, lines) if r["kind"] == "event" and r["event"] == "best"}


def fid_mean(record):
    return (record["scores"]["AtoB"]["FID"] + record["scores"]["BtoA"]["FID"]) / 2


def test_eval_during_training_logs_keeps_best_and_resumes_it(make_recipe, tmp_path, use_weights):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = make_recipe(EVAL)
    run = tmp_path / "run"
    before, best = train(recipe)
    assert before is None
    evals = records(run)
    assert sorted(evals) == [2]
    assert all(r["scores"]["AtoB"]["n_translated"] == 2 and r["inception"]["sha256"] == use_weights.sha256
               for r in evals.values())
    scalars = EventAccumulator(str(run / "tb")).Reload().Tags()["scalars"]
    for d in ("AtoB", "BtoA"):
        for name in ("FID", "KID", "cycle_L1"):
            assert f"eval/{name}_{d}" in scalars
        # 2 test images: every KID subset holds both, so there is no spread to log (not "± 0")
        assert f"eval/KID_std_{d}" not in scalars and evals[2]["scores"][d]["KID_std"] is None
        assert evals[2]["kid"]["spread"][d].startswith("none: every subset (of 2) holds all 2 translated")
    assert evals[2]["translated_in"] == "fp32" and evals[2]["page"] == "step_00000002/index.html"
    page = run / "eval" / "step_00000002"  # the results page, written during training too
    assert sorted(p.name for p in (page / "AtoB").iterdir()) == [f"00{i}_{c}.png" for i in (0, 1)
                                                               for c in ("input", "reconstructed", "translated")]
    assert (page / "index.html").is_file() and not list((run / "eval").glob(".*"))  # no temporary left
    step = min(evals, key=lambda s: fid_mean(evals[s]))
    kept = read_best(run)
    assert kept["metric"] == "FID_mean" and kept["step"] == step
    assert kept["value"] == pytest.approx(fid_mean(evals[step])) == pytest.approx(best)
    folder = run / "best" / f"step_{step:08d}"
    assert sorted(p.name for p in (run / "best").iterdir()) == sorted(["best.json", folder.name])
    original = run / "checkpoints" / folder.name / "train.pt"
    assert (folder / "train.pt").read_bytes() == original.read_bytes()
    assert (folder / "train.pt").stat().st_ino == original.stat().st_ino  # hard-linked, not rewritten
    assert best_events(run) == {2: {"metric": "FID_mean", "value": pytest.approx(best),
                                    "checkpoint": str(folder.resolve())}}

    # resume to step 4: the best score so far is known before the first new evaluation
    before, after = train(recipe, "train.steps=4")
    assert before == pytest.approx(best)
    evals = records(run)
    assert sorted(evals) == [2, 4]
    step = min(evals, key=lambda s: fid_mean(evals[s]))
    assert read_best(run)["step"] == step and after == pytest.approx(fid_mean(evals[step]))
    assert (run / "best" / f"step_{step:08d}" / "train.pt").is_file()
    assert len(list((run / "best").glob("step_*"))) == 1
    assert sorted(best_events(run)) == ([2, 4] if step == 4 else [2])  # a best event each time the best changed


@pytest.mark.parametrize("overrides, message", [
    (["eval.every=3"], "eval.every (3) must be a multiple of train.ckpt_every"),
    (["eval.every=-1"], "eval.every must be >= 0"),
    (["eval.max_images=1"], "eval.max_images must be >= 2"),
    (["eval.directions=AtoB", "eval.metric=FID_BtoA"], "eval.metric=FID_BtoA needs eval.directions=both or BtoA"),
    (["eval.directions=BtoA", "eval.metric=KID_mean"], "eval.metric=KID_mean needs eval.directions=both,"),
    (["eval.metric=IS"], "eval.metric"),
])
def test_eval_section_is_checked(make_recipe, overrides, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        load_config(make_recipe(EVAL), overrides)


def test_start_over_moves_best_and_eval_aside_with_the_rest(make_recipe, tmp_path, use_weights):
    """train.start_over moves the whole previous run aside: its best/ and eval/ too, so the new run's
    evaluation starts without the old run's best score and best/ only ever holds the new run's weights."""
    recipe = make_recipe(EVAL)
    run = tmp_path / "run"
    train(recipe)
    old_best = read_best(run)
    assert old_best is not None and (run / "eval").is_dir()

    before, _ = train(recipe, "train.start_over=true")
    assert before is None  # the old run's best score is not the new run's
    (aside,) = run.glob("replaced-*")
    assert read_best(aside) == old_best
    assert sorted(p.name for p in (aside / "eval").iterdir()) == ["step_00000002", "step_00000002.json"]  # and its page
    assert {"best", "eval", "checkpoints", "tb", "config.yaml"} <= {p.name for p in aside.iterdir()}
    new_best = read_best(run)
    assert new_best["step"] == 2 and new_best["checkpoint"].startswith(str(run / "best"))


def test_with_train_ema_both_weights_are_scored_and_the_best_is_chosen_by_the_average(make_recipe, tmp_path,
                                                                                    use_weights):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    recipe = make_recipe(merge_dicts(EVAL, {"train": {"ema": 0.5}}))
    run = tmp_path / "run"
    _, best = train(recipe)
    (record,) = records(run).values()
    assert record["best_by"] == "ema" and record["ema"].keys() == record["scores"].keys()
    assert record["ema"]["AtoB"]["FID"] != record["scores"]["AtoB"]["FID"]  # two different generators scored
    kept = read_best(run)
    assert kept["weights"] == "ema" and kept["value"] == pytest.approx(fid_mean({"scores": record["ema"]}))
    scalars = EventAccumulator(str(run / "tb")).Reload().Tags()["scalars"]
    assert "eval_ema/FID_AtoB" in scalars and "eval/FID_AtoB" in scalars


def merge_dicts(a: dict, b: dict) -> dict:
    from conftest import merge

    return merge(a, b)
