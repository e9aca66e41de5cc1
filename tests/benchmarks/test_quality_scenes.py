"""The ground-truth benchmark's data (benchmarks/quality_scenes.py): the same bytes for the same
arguments, the training split unpaired (A and B from disjoint scenes), the test pairs aligned."""
from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import numpy as np
from conftest import REPO
from PIL import Image

sys.path.insert(0, str(REPO / "benchmarks"))
from quality_scenes import COLOURS_A, Scene, render, scene_of, write_splits  # noqa: E402


def digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*.png"))}


def test_same_arguments_same_bytes(tmp_path):
    one = digests(write_splits(tmp_path / "one", n_train=3, n_test=2, size=32))
    two = digests(write_splits(tmp_path / "two", n_train=3, n_test=2, size=32))
    assert len(one) == 8 and one == two
    other = digests(write_splits(tmp_path / "other", n_train=3, n_test=2, size=32, seed=1))
    assert not set(one.values()) & set(other.values())


def test_training_split_is_unpaired(tmp_path):
    """No trainB image is the rendering of any trainA scene: A and B come from disjoint scenes."""
    out = write_splits(tmp_path / "d", n_train=6, n_test=0, size=32)
    a_images = {np.asarray(Image.open(p)).tobytes() for p in sorted((out / "trainA").glob("*.png"))}
    b_images = [np.asarray(Image.open(p)) for p in sorted((out / "trainB").glob("*.png"))]
    assert len(a_images) == 6 and len(b_images) == 6
    for i in range(6):
        assert render(scene_of(f"cgx-quality-0-trainB-{i}"), "B", 32).tobytes() == b_images[i].tobytes()
        assert render(scene_of(f"cgx-quality-0-trainB-{i}"), "A", 32).tobytes() not in a_images


def object_mask_a(a: np.ndarray) -> np.ndarray:
    return np.any([np.all(a == np.array(c, np.uint8), axis=-1) for c in COLOURS_A.values()], axis=0)


def covered(x: np.ndarray, y: np.ndarray) -> float:
    """The share of ``x``'s pixels that ``y`` holds too."""
    return float((x & y).sum() / x.sum())


def iou(x: np.ndarray, y: np.ndarray) -> float:
    return float((x & y).sum() / max((x | y).sum(), 1))


def test_test_pairs_are_aligned(tmp_path):
    """Each test pair's halves hold the same objects at the same pixels: A's flat class colours cover
    what B's rendering changes over its bare background; a shift of 2 px breaks that."""
    size = 64
    out = write_splits(tmp_path / "d", n_train=0, n_test=4, size=size)
    for i in range(4):
        pair = np.asarray(Image.open(out / "test" / f"{i:05d}.png"))
        assert pair.shape == (size, 2 * size, 3)
        a, b = pair[:, :size], pair[:, size:]
        scene = scene_of(f"cgx-quality-0-test-{i}")
        bare = render(Scene(scene.stripe_angle, scene.stripe_freq, scene.stripe_phase, ()), "B", size)
        objects_b = np.any(b != bare, axis=-1)
        objects_a = object_mask_a(a)
        assert objects_a.sum() > 100
        # every pixel of A's flat class colours (edges, anti-aliased blends, left out) is an object pixel in B
        assert covered(objects_a, objects_b) == 1.0 and iou(objects_a, objects_b) > 0.7
        assert covered(objects_a, np.roll(objects_b, 3, axis=1)) < 0.95
        assert covered(objects_a, np.roll(objects_b, 3, axis=0)) < 0.95
