"""cgx.eval.reference_segmenter: trains a segmenter plugin on labelled real images and writes TorchScript
that cgx eval's --segmenter loads, segmenting the shapes it was trained on."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgx.eval.reference_segmenter import main
from cgx.eval.segmenters import build_segmenter


def write_set(root, n=6, size=24, seed=0):
    """Squares (class 1) and a bar (class 2) on a dark background, each image with its label map."""
    rng = np.random.default_rng(seed)
    images, labels = root / "trainB", root / "trainB_labels"
    images.mkdir(parents=True)
    labels.mkdir()
    for i in range(n):
        y = np.zeros((size, size), np.uint8)
        top, left = rng.integers(0, size - 8, 2)
        y[top:top + 8, left:left + 8] = 1
        y[:, size - 4:] = 2
        y[0, 0] = 255  # an unlabelled pixel
        rgb = np.stack([y * 100 + 20, (y == 2) * 200 + 10, np.full_like(y, 30)], -1).astype(np.uint8)
        Image.fromarray(rgb).save(images / f"{i}.png")
        Image.fromarray(y).save(labels / f"{i}.png")
    return images


@pytest.mark.slow
def test_reference_segmenter_learns_and_loads_in_eval(tmp_path, capsys):
    images = write_set(tmp_path)
    out = tmp_path / "seg.pt"
    assert main([str(images), str(out), "--classes", "3", "--steps", "60", "--batch-size", "4", "--width", "8"]) == 0
    seg = build_segmenter(str(out), torch.device("cpu"))
    x = torch.from_numpy(np.asarray(Image.open(images / "0.png"), np.float32) / 127.5 - 1).permute(2, 0, 1)[None]
    truth = torch.from_numpy(np.asarray(Image.open(tmp_path / "trainB_labels" / "0.png")).astype(np.int64))
    pred = seg(x)[0]
    labelled = truth != 255
    assert (pred[labelled] == truth[labelled]).float().mean() > 0.9
    big = torch.nn.functional.interpolate(x, size=(40, 56))  # another size than it was traced at
    assert seg(big).shape == (1, 40, 56)


def test_reference_segmenter_errors_are_one_line(tmp_path, capsys):
    images = write_set(tmp_path, n=2)
    (tmp_path / "trainB_labels" / "1.png").unlink()
    assert main([str(images), str(tmp_path / "seg.pt"), "--classes", "3", "--steps", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "has no label map" in err
    assert main([str(tmp_path / "none"), str(tmp_path / "seg.pt"), "--classes", "3"]) == 2
    assert "is not a folder of images" in capsys.readouterr().err
