"""Case 10: the folder source treats unreadable images as the shard source does (data.on_corrupt),
and an image smaller than the crop is an error naming the file."""
from __future__ import annotations

import logging
import random
import subprocess
import sys

import numpy as np
import pytest
import torch

from cgx.config import DataConfig
from cgx.data import build_source
from cgx.data.demo import render
from cgx.data.images import DataError


@pytest.fixture
def folder(tmp_path):
    """trainA: 6 images, a002.png empty and a004.jpg truncated; trainB: 6 good ones."""
    for d in "AB":
        (tmp_path / f"train{d}").mkdir()
        for i in range(6):
            render(d, random.Random(f"{d}{i}"), 32).save(tmp_path / f"train{d}" / f"{d.lower()}{i:03d}.jpg")
    (tmp_path / "trainA" / "a002.jpg").unlink()
    (tmp_path / "trainA" / "a002.png").write_bytes(b"")
    data = (tmp_path / "trainA" / "a004.jpg").read_bytes()
    (tmp_path / "trainA" / "a004.jpg").write_bytes(data[: len(data) // 3])
    return tmp_path


def cfg(root, **kw) -> DataConfig:
    base = dict(root=str(root), preprocess="none", crop_size=32, load_size=32, flip=False, workers=0)
    return DataConfig(**{**base, **kw})


def run(c: DataConfig, start: int, stop: int, batch: int = 1) -> list[dict]:
    return list(build_source(c, batch=batch, seed=0).batches(start, stop))


@pytest.mark.parametrize("workers", [0, 2])
def test_unreadable_images_are_skipped_counted_and_resume_exactly(folder, caplog, workers):
    c = cfg(folder, workers=workers)
    with caplog.at_level(logging.WARNING, logger="cgx.data"):
        batches = run(c, 0, 12)  # two epochs of 6 steps
    assert sum(b["skipped"] for b in batches) == 4  # each unreadable file once an epoch
    if workers == 0:  # (worker processes log in their own process)
        assert "a002.png: the file is empty" in caplog.text and "a004.jpg" in caplog.text
    for b in batches:
        assert torch.isfinite(b["A"]).all() and b["A"].shape == (1, 3, 32, 32)
    resumed = run(c, 5, 12)
    for a, b in zip(batches[5:], resumed):
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["B"], b["B"]) and a["skipped"] == b["skipped"]


def test_batches_count_every_skipped_image(folder):
    batches = run(cfg(folder), 0, 3, batch=2)  # one epoch in batches of 2
    assert sum(int(b["skipped"]) for b in batches) == 2


def test_on_corrupt_raise_names_the_file(folder):
    with pytest.raises(DataError, match=r"domain A: cannot read image .*a00[24]\.\w+.*data.on_corrupt=raise"):
        run(cfg(folder, on_corrupt="raise"), 0, 6)


def test_an_image_smaller_than_the_crop_names_file_and_sizes(folder):
    small = folder / "trainB" / "b003.jpg"
    render("B", random.Random("small"), 32).resize((20, 40)).save(small)
    with pytest.raises(DataError) as e:
        run(cfg(folder, preprocess="crop", crop_size=24), 0, 6)
    assert str(e.value).startswith(f"{small}: the image is 20x40, smaller than data.crop_size=24")


@pytest.mark.multiprocess
def test_an_image_smaller_than_the_crop_in_training_is_a_one_line_error(make_recipe, folder):
    render("B", random.Random("small"), 32).resize((20, 40)).save(folder / "trainB" / "b003.jpg")
    recipe = make_recipe({"data": {"root": str(folder), "preprocess": "crop", "crop_size": 24, "workers": 1}})
    proc = subprocess.run([sys.executable, "-m", "cgx.run", str(recipe)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr.strip().splitlines()
    assert err[-1].startswith("cgx: error: ") and "b003.jpg: the image is 20x40" in err[-1], proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
