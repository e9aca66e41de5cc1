"""Evaluation with ground truth: `cgx eval --pairs` and evaluation during training on paired data report
L1, PSNR and SSIM of each learnt direction against its target, beside FID/KID, and the JSON says which."""
from __future__ import annotations

import json

import pytest
import torch
from eval_fixtures import use_weights, weights  # noqa: F401 -- fixtures

from cgx.cli import main as cli
from cgx.config import load_config
from cgx.eval.paired import pixel_scores
from cgx.plugins import Registry
from cgx.train.trainer import Trainer


def test_pixel_scores_are_the_textbook_ones():
    g = torch.Generator().manual_seed(0)
    target = torch.rand(2, 3, 32, 32, generator=g) * 2 - 1
    same = pixel_scores(target, target)
    assert same[:, 0].tolist() == [0.0, 0.0] and torch.allclose(same[:, 2], torch.ones(2, dtype=torch.float64))
    fake = (target + 0.1 * torch.randn(2, 3, 32, 32, generator=g)).clamp(-1, 1)
    scores = pixel_scores(fake, target)
    u = lambda x: ((x.clamp(-1, 1) + 1) * 127.5).round().double() / 255  # noqa: E731 -- as saved 8-bit images
    mse = ((u(fake) - u(target)) ** 2).mean(dim=(1, 2, 3))
    torch.testing.assert_close(scores[:, 0], (u(fake) - u(target)).abs().mean(dim=(1, 2, 3)))
    torch.testing.assert_close(scores[:, 1], 10 * torch.log10(1 / mse))
    assert (scores[:, 2] < 1).all() and (scores[:, 2] > 0).all()


def test_training_and_cgx_eval_score_pix2pix_against_ground_truth(make_paired_recipe, paired_data, tmp_path,
                                                                  use_weights):
    recipe = make_paired_recipe({"train": {"steps": 2, "ckpt_every": 2, "image_every": 0},
                                 "eval": {"every": 2, "metric": "FID_AtoB"}})
    trainer = Trainer(load_config(recipe), registry=Registry())
    try:
        trainer.fit()
    finally:
        trainer.close()
    record = json.loads((tmp_path / "run/eval/step_00000002.json").read_text())
    assert list(record["scores"]) == ["AtoB"]  # pix2pix learns one direction
    scores = record["scores"]["AtoB"]
    assert {"L1", "PSNR", "SSIM", "FID", "KID_mean"} <= set(scores) and scores["n_translated"] == 3
    assert set(record["paired"]["metrics"]) == {"L1", "PSNR", "SSIM"}
    assert record["paired"]["pairs"] == str(paired_data / "test")
    assert (tmp_path / "run/best/best.json").is_file()
    page = tmp_path / "run/eval/step_00000002"  # the page: input | translated | ground truth, AtoB only
    assert sorted(f.name for f in (page / "AtoB").iterdir())[:3] == [
        "000_ground_truth.png", "000_input.png", "000_translated.png"]
    assert sorted(f.name for f in page.iterdir()) == ["AtoB", "index.html"]

    out = tmp_path / "cli.json"
    assert cli(["eval", str(tmp_path / "run"), "--pairs", str(paired_data / "test"), "-o", str(out),
                "--no-progress"]) == 0
    again = json.loads(out.read_text())["scores"]["AtoB"]
    for k in ("L1", "PSNR", "SSIM", "FID"):
        assert again[k] == pytest.approx(scores[k], rel=1e-6, abs=1e-9), k
    assert cli(["eval", str(tmp_path / "run"), "--pairs", str(paired_data / "test"), "--direction", "BtoA",
                "-o", str(out), "--no-progress"]) == 2  # one line: the run learns AtoB only


def test_cyclegan_on_paired_data_is_scored_both_ways(make_recipe, paired_data, tmp_path, use_weights, capsys):
    """CycleGAN trains on the pairs' images ignoring the pairs; with ground truth both directions are scored."""
    from cgx.run import main as run_main

    recipe = make_recipe({"data": {"paired": True, "root": str(paired_data)},
                          "train": {"steps": 2, "ckpt_every": 2, "image_every": 0}})
    assert run_main([str(recipe)]) == 0
    assert "does not learn from pairs" in capsys.readouterr().out
    out = tmp_path / "cyc.json"
    assert cli(["eval", str(tmp_path / "run"), "--pairs", str(paired_data / "test"), "-o", str(out),
                "--no-progress"]) == 0
    assert set(json.loads(out.read_text())["scores"]) == {"AtoB", "BtoA"}
