"""`cgx eval --labels DIR --segmenter MODEL` end to end on a tiny run: the FCN score in the table, the JSON record
and the results page, equal to a plain numpy statement of it on the same translations."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image
from eval_fixtures import tiny_run, use_weights, weights  # noqa: F401 -- fixtures

from cgx.cli import main as cli_main

PALETTE = ["#000000", "#ff0000", "#00ff00", "#0000ff"]


@pytest.fixture(scope="module")
def labelled_test(tmp_path_factory):
    """3 test images per domain (32 px) with their label maps (cgx demo-data --labels)."""
    from cgx.data.demo import generate

    return generate(tmp_path_factory.mktemp("labelled") / "data", n_train=1, n_test=3, size=32, seed=5, labels=True)


def plain_scores(pred: np.ndarray, truth: np.ndarray, classes: int, ignore: int = 255) -> dict:
    valid = truth != ignore
    accs, ious = [], []
    for c in range(classes):
        t, p = (truth == c) & valid, (pred == c) & valid
        if t.sum():
            accs.append(np.sum(t & p) / t.sum())
        if (t | p).sum():
            ious.append(np.sum(t & p) / np.sum(t | p))
    return {"pixel_accuracy": np.sum((pred == truth) & valid) / valid.sum(), "class_accuracy": np.mean(accs),
            "mean_iou": np.mean(ious)}


def translations(run, folder) -> torch.Tensor:
    from cgx.infer import load_generators, translate_batch

    gens = load_generators(run)
    files = sorted(folder.glob("*.png"))
    x = torch.stack([torch.from_numpy(np.asarray(Image.open(f).convert("RGB"))).permute(2, 0, 1) for f in files])
    with torch.no_grad():
        return translate_batch(gens.G.eval(), x.float() / 127.5 - 1)


def truth_of(data) -> np.ndarray:
    return np.stack([np.asarray(Image.open(f)) for f in sorted((data / "testA_labels").glob("*.png"))]).astype(np.int64)


def run_cli(run, data, out, segmenter, capsys) -> tuple[dict, str]:
    args = ["eval", str(run), "--a", str(data / "testA"), "--b", str(data / "testB"), "--direction", "AtoB",
            "--labels", str(data / "testA_labels"), "--segmenter", segmenter, "--output", str(out), "--no-progress",
            "--batch-size", "2"]  # two chunks: the second starts at image 2
    assert cli_main(args) == 0
    return json.loads(out.read_text()), capsys.readouterr().out


def check_record(record: dict, expected: dict, page) -> None:
    scores = record["scores"]["AtoB"]
    for key, value in expected.items():
        assert scores[key] == pytest.approx(float(value), abs=1e-9), key
    assert scores["FID"] is not None and scores["fcn"]["pixels"] == 3 * 32 * 32
    html = (page / "index.html").read_text()
    assert "mean IoU (FCN)" in html and "segmentation" in html
    shown = sorted(p.name for p in (page / "AtoB").iterdir())
    assert "000_segmentation.png" in shown and len([n for n in shown if n.endswith("segmentation.png")]) == 3


def test_eval_labels_with_a_palette_segmenter(tiny_run, labelled_test, use_weights, tmp_path, capsys):
    record, out = run_cli(tiny_run, labelled_test, tmp_path / "pal.json", "palette:" + ",".join(PALETTE), capsys)
    fake = translations(tiny_run, labelled_test / "testA")
    rgb = ((fake.clamp(-1, 1) + 1) * 127.5).round().permute(0, 2, 3, 1).numpy()
    colours = np.array([[int(c[i:i + 2], 16) for i in (1, 3, 5)] for c in PALETTE], dtype=np.float64)
    pred = ((rgb[:, :, :, None, :] - colours) ** 2).sum(-1).argmin(-1)
    check_record(record, plain_scores(pred, truth_of(labelled_test), 4), tmp_path / "pal")
    assert "mean IoU" in out and f"{record['scores']['AtoB']['mean_iou']:.4f}" in out


def test_eval_labels_with_a_torchscript_segmenter(tiny_run, labelled_test, use_weights, tmp_path, capsys):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, padding=1), torch.nn.ReLU(), torch.nn.Conv2d(8, 4, 1))
    path = tmp_path / "seg.pt"
    torch.jit.trace(net, torch.zeros(1, 3, 32, 32)).save(str(path))
    record, _ = run_cli(tiny_run, labelled_test, tmp_path / "ts.json", str(path), capsys)
    with torch.no_grad():
        pred = net(translations(tiny_run, labelled_test / "testA")).argmax(1).numpy()
    check_record(record, plain_scores(pred, truth_of(labelled_test), 4), tmp_path / "ts")
    assert record["scores"]["AtoB"]["fcn"]["segmenter"] == str(path)


def test_eval_labels_refusals(tiny_run, labelled_test, tmp_path, capsys):
    base = ["eval", str(tiny_run), "--a", str(labelled_test / "testA"), "--b", str(labelled_test / "testB"),
            "--output", str(tmp_path / "x.json"), "--no-progress"]
    for extra, message in ((["--labels", str(labelled_test / "testA_labels")], "--labels needs --segmenter"),
                           (["--segmenter", "palette:#000000,#ffffff"], "give --labels DIR"),
                           (["--labels", str(labelled_test / "testA_labels"), "--segmenter", "fcn8s"],
                            "--segmenter fcn8s is not one cgx knows: it takes a TorchScript file"),
                           (["--labels", str(labelled_test / "testA_labels"), "--segmenter", "palette:#000000,#ffffff"],
                            "holds 2 at x=3, y=5 (318 such pixels); --labels accepts classes 0..1 or ignore_index 255 "
                            "(the segmenter palette:#000000,#ffffff gives 2 classes; the run's recipe has no "
                            "data.a.labels)")):
        assert cli_main([*base, *extra]) != 0
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


def test_fcn_score_during_training_picks_best_by_mean_iou(make_recipe, tmp_path, use_weights):
    """eval.labels + eval.segmenter: every evaluation scores the FCN score, logs it, and best/ keeps the step of
    the highest mean IoU (higher is better, unlike FID)."""
    from cgx.config import load_config
    from cgx.data.demo import generate
    from cgx.eval.periodic import read_best
    from cgx.plugins import Registry
    from cgx.train.trainer import Trainer

    data = generate(tmp_path / "data", n_train=4, n_test=2, size=32, seed=1, labels=True)
    recipe = make_recipe({"data": {"root": str(data), "a": {"labels": {"classes": 4}}},
                          "train": {"steps": 4, "ckpt_every": 2, "log_every": 2, "image_every": 0},
                          "eval": {"every": 2, "metric": "mean_iou_AtoB", "directions": "AtoB",
                                   "labels": str(data / "testA_labels"), "segmenter": "palette:" + ",".join(PALETTE)},
                          "logging": {"backends": ["jsonl"]}})
    trainer = Trainer(load_config(recipe), registry=Registry())
    try:
        trainer.fit()
    finally:
        trainer.close()
    run = tmp_path / "run"
    evals = {s: json.loads((run / "eval" / f"step_{s:08d}.json").read_text()) for s in (2, 4)}
    ious = {s: r["scores"]["AtoB"]["mean_iou"] for s, r in evals.items()}
    assert all(0 <= v <= 1 for v in ious.values()) and ious[2] != ious[4]
    kept = read_best(run)
    assert kept["metric"] == "mean_iou_AtoB" and kept["step"] == max(ious, key=ious.get)
    assert kept["value"] == pytest.approx(max(ious.values()))
    logged = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines()]
    scalars = {k for r in logged if r["kind"] == "scalars" for k in r["values"]}
    assert {"eval/mean_iou_AtoB", "eval/pixel_accuracy_AtoB", "eval/class_accuracy_AtoB"} <= scalars
    assert (run / "eval" / "step_00000004" / "AtoB" / "000_segmentation.png").is_file()
