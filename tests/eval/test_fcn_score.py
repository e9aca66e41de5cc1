"""The FCN score's numbers (cgx.eval.fcn_score) against a plain numpy statement of them, and the segmenters
(cgx.eval.segmenters) that label translated images."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from cgx.eval.fcn_score import confusion, fcn_scores
from cgx.eval.segmenters import build_segmenter
from cgx.errors import UsageError

IGNORE = 255


def plain(pred: np.ndarray, truth: np.ndarray, classes: int) -> tuple[float, float, float]:
    """Per-pixel accuracy, per-class accuracy and mean IoU, pixel by pixel, without a confusion matrix."""
    valid = truth != IGNORE
    pixel = np.sum((pred == truth) & valid) / np.sum(valid)
    accs, ious = [], []
    for c in range(classes):
        t, p = (truth == c) & valid, (pred == c) & valid
        if t.sum():
            accs.append(np.sum(t & p) / t.sum())
        if (t | p).sum():
            ious.append(np.sum(t & p) / np.sum(t | p))
    return pixel, float(np.mean(accs)), float(np.mean(ious))


def test_scores_equal_a_plain_numpy_computation():
    rng = np.random.default_rng(0)
    classes = 6
    truth = rng.integers(0, 4, size=(3, 17, 23))  # classes 4 and 5 never in the truth
    truth[rng.random(truth.shape) < 0.1] = IGNORE
    pred = np.where(rng.random(truth.shape) < 0.7, truth, rng.integers(0, 5, size=truth.shape))  # 5: never predicted
    pred[pred == IGNORE] = 0
    m = confusion(torch.from_numpy(pred), torch.from_numpy(truth), classes, IGNORE)
    got = fcn_scores(m)
    pixel, acc, iou = plain(pred, truth, classes)
    assert got["pixel_accuracy"] == pytest.approx(pixel, abs=1e-12)
    assert got["class_accuracy"] == pytest.approx(acc, abs=1e-12)
    assert got["mean_iou"] == pytest.approx(iou, abs=1e-12)
    assert got["pixels"] == int(np.sum(truth != IGNORE))
    assert got["class_iou"][5] is None and got["class_iou"][4] == 0.0  # absent from both / predicted only


def test_known_maps_by_hand():
    truth = torch.tensor([[0, 0, 1, IGNORE], [2, 2, 1, 1]])
    pred = torch.tensor([[0, 1, 1, 2], [2, 0, 1, 1]])
    s = fcn_scores(confusion(pred, truth, 4, IGNORE))  # class 3 absent from both: out of the means
    assert s["pixel_accuracy"] == pytest.approx(5 / 7)
    assert s["class_accuracy"] == pytest.approx((1 / 2 + 3 / 3 + 1 / 2) / 3)
    assert s["mean_iou"] == pytest.approx((1 / 3 + 3 / 4 + 1 / 2) / 3)


def test_palette_segmenter_takes_the_nearest_colour():
    seg = build_segmenter("palette:#000000,#ff0000,#0080ff", torch.device("cpu"))
    rgb = torch.tensor([[[0, 0, 0], [250, 10, 3]], [[0, 120, 250], [100, 0, 0]]], dtype=torch.float32)
    x = (rgb.permute(2, 0, 1)[None] / 127.5) - 1
    assert seg(x)[0].tolist() == [[0, 1], [2, 0]] and seg.classes == 3


def test_torchscript_segmenter_and_refusals(tmp_path):
    class Net(torch.nn.Module):
        def forward(self, x):
            return torch.cat([-x[:, :1], x[:, :1]], 1)  # class 1 where the first channel is positive

    path = tmp_path / "seg.pt"
    torch.jit.script(Net()).save(str(path))
    seg = build_segmenter(str(path), torch.device("cpu"))
    x = torch.tensor([[[[-0.5, 0.5]]]]).expand(1, 3, 1, 2)
    assert seg(x).tolist() == [[[0, 1]]] and seg.classes == 2
    (tmp_path / "junk.pt").write_bytes(b"not torchscript")
    with pytest.raises(UsageError, match="not a TorchScript file"):
        build_segmenter(str(tmp_path / "junk.pt"), torch.device("cpu"))
    with pytest.raises(UsageError, match=r"not one cgx knows: it takes a TorchScript file .* palette:COLOURS .* run"):
        build_segmenter("deeplab", torch.device("cpu"))
    with pytest.raises(UsageError, match="--segmenter run needs a cgx run or checkpoint"):
        build_segmenter("run", torch.device("cpu"))
    with pytest.raises(UsageError, match="not a colour"):
        build_segmenter("palette:red,blue", torch.device("cpu"))
    with pytest.raises(UsageError, match="file not found"):
        build_segmenter(str(tmp_path / "none.onnx"), torch.device("cpu"))


def test_onnx_segmenter_gives_the_same_classes(tmp_path):
    pytest.importorskip("onnxruntime")
    net = torch.nn.Conv2d(3, 4, 1)
    path = tmp_path / "seg.onnx"
    torch.onnx.export(net, (torch.zeros(1, 3, 8, 8),), str(path), input_names=["x"],
                      dynamic_axes={"x": {0: "n", 2: "h", 3: "w"}}, dynamo=False)
    x = torch.rand(2, 3, 8, 8) * 2 - 1
    seg = build_segmenter(str(path), torch.device("cpu"))
    assert torch.equal(seg(x), net(x).argmax(1)) and seg.classes == 4


def test_onnx_without_onnxruntime_is_one_line_with_the_install_hint(tmp_path, monkeypatch):
    import importlib.util

    from cgx.errors import SetupError

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    (tmp_path / "seg.onnx").write_bytes(b"x")
    with pytest.raises(SetupError, match=r"needs the onnxruntime package, which is not installed: .*install .*\[export\]"):
        build_segmenter(str(tmp_path / "seg.onnx"), torch.device("cpu"))


def test_shares_of_the_images_sum_to_the_whole_sets_score(tmp_path):
    """Under torchrun each rank counts its share; the summed matrices give the one-process score."""
    from types import SimpleNamespace

    from cgx.config import LabelSpec
    from cgx.data.demo import generate
    from cgx.eval.fcn_score import FcnScorer, LabelSet
    from cgx.eval.image_set import ImageSet

    data = generate(tmp_path / "d", n_train=0, n_test=5, size=16, labels=True)
    images = ImageSet(data / "testA", "--a")
    seg = build_segmenter("palette:#000000,#ff0000,#00ff00,#0000ff", torch.device("cpu"))
    x = torch.stack(images.load(range(5))).float() / 127.5 - 1  # the real images stand in for translations

    def scorer():
        return FcnScorer(seg, LabelSet(data / "testA_labels", images, LabelSpec(classes=4), "--labels"), "cpu")

    whole, ranks = scorer(), [scorer(), scorer()]
    whole.add(range(5), x, (16, 16))
    ranks[0].add(range(0, 3), x[:3], (16, 16))
    ranks[1].add(range(3, 5), x[3:], (16, 16))
    summed = ranks[0].matrix + ranks[1].matrix
    collective = SimpleNamespace(device="cpu", all_reduce=lambda t, op: summed.clone())
    one = whole.scores(SimpleNamespace(device="cpu", all_reduce=lambda t, op: t.clone()))
    two = ranks[0].scores(collective)
    assert one == two and one["pixels"] == 5 * 16 * 16
    assert whole.matrix.sum() == 0  # counted once: the next evaluation starts afresh
