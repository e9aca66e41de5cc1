"""`cgx demo-data --labels`: the demo scenes with their class maps (the shapes are the classes), deterministic,
the images the same as without labels."""
from __future__ import annotations

import hashlib

import numpy as np
from PIL import Image

from cgx.cli import main as cli_main
from cgx.config import LabelSpec
from cgx.data.demo import LABEL_CLASSES, generate
from cgx.data.label_maps import read_label_map


def digests(root) -> dict:
    return {p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*.png"))}


def test_demo_labels_are_deterministic_and_leave_the_images_unchanged(tmp_path, capsys):
    assert cli_main(["demo-data", str(tmp_path / "one"), "--labels", "--n-train", "3", "--n-test", "2",
                     "--size", "32"]) == 0
    assert "data.a.labels.classes=4" in capsys.readouterr().out
    generate(tmp_path / "two", n_train=3, n_test=2, size=32, labels=True)
    generate(tmp_path / "plain", n_train=3, n_test=2, size=32)
    one, two, plain = digests(tmp_path / "one"), digests(tmp_path / "two"), digests(tmp_path / "plain")
    assert one == two
    assert {k: v for k, v in one.items() if "_labels/" not in k} == plain
    for split in ("trainA", "trainB", "testA", "testB"):
        images = sorted(p.stem for p in (tmp_path / "one" / split).iterdir())
        assert sorted(p.stem for p in (tmp_path / "one" / f"{split}_labels").iterdir()) == images


def test_demo_labels_mark_the_shapes(tmp_path):
    """Domain A draws warm shapes on a dark blue background: where the map says background, the image is blue;
    where it says a shape, red (away from the smoothed edges)."""
    root = generate(tmp_path / "d", n_train=4, n_test=0, size=48, labels=True)
    seen = set()
    for image in sorted((root / "trainA").iterdir()):
        rgb = np.asarray(Image.open(image), dtype=np.int64)
        labels = read_label_map(root / "trainA_labels" / image.name, LabelSpec(classes=len(LABEL_CLASSES)), (48, 48))
        seen |= set(np.unique(labels).tolist())
        pad = np.pad(labels, 1, mode="edge")
        inner = np.all([pad[1 + dy:49 + dy, 1 + dx:49 + dx] == labels for dy in (-1, 0, 1) for dx in (-1, 0, 1)], axis=0)
        background, shape = inner & (labels == 0), inner & (labels > 0)
        assert (rgb[background][:, 2] > rgb[background][:, 0]).all()
        assert (rgb[shape][:, 0] > rgb[shape][:, 2]).all()
    assert 0 in seen and len(seen) >= 3
