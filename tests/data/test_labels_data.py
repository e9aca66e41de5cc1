"""Labels in the data pipeline: label maps cropped and flipped with exactly the image's draws, in the folder
and shard sources, resumed exactly; missing or bad label maps named (data.on_corrupt)."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgx.config import DataConfig, ImageSpec, LabelSpec
from cgx.data.label_maps import encode_label_map
from cgx.data.source import build_source
from cgx.data.transforms import Augment, augment_together
from cgx.errors import DataError

CLASSES = 5
LEVEL = 50  # class k is drawn as grey level k * LEVEL: the class can be read back from the image


def coded_scene(rng: np.random.Generator, w: int, h: int, block: int) -> tuple[Image.Image, np.ndarray]:
    """An image whose grey level says each pixel's class, and its label map: random blocks of classes."""
    coarse = rng.integers(0, CLASSES, size=(-(-h // block), -(-w // block)))
    labels = np.kron(coarse, np.ones((block, block), dtype=np.int64))[:h, :w]
    labels[rng.integers(0, h), rng.integers(0, w)] = 255  # one ignored pixel
    grey = np.where(labels == 255, 0, labels * LEVEL).astype(np.uint8)
    return Image.fromarray(np.stack([grey] * 3, -1), "RGB"), labels


def write_domain(root, name: str, n: int, w: int, h: int, block: int, seed: int, labels: bool = True):
    rng = np.random.default_rng(seed)
    (root / name).mkdir(parents=True)
    if labels:
        (root / f"{name}_labels").mkdir()
    for i in range(n):
        image, lbl = coded_scene(rng, w, h, block)
        image.save(root / name / f"s{i:03d}.png")
        if labels:
            (root / f"{name}_labels" / f"s{i:03d}.png").write_bytes(encode_label_map(lbl))


@pytest.fixture
def labelled(tmp_path):
    root = tmp_path / "data"
    write_domain(root, "trainA", 6, 40, 30, 1, seed=1)  # 1-px blocks: any misalignment shows
    write_domain(root, "trainB", 4, 40, 30, 1, seed=2, labels=False)
    return root


def cfg_for(root, **data) -> DataConfig:
    base = dict(root=str(root), preprocess="crop", load_size=32, crop_size=24, flip=True, workers=0,
                a=ImageSpec(labels=LabelSpec(classes=CLASSES)))
    return DataConfig(**{**base, **data})


def decoded_classes(x: torch.Tensor) -> torch.Tensor:
    """The class each pixel of an augmented image (float, [-1, 1]) encodes."""
    grey = ((x[0] + 1) * 127.5).round()
    return torch.where(grey == 0, torch.full_like(grey, -1), grey / LEVEL).long()


def check_aligned(x: torch.Tensor, y: torch.Tensor) -> None:
    want = torch.where(y == 255, 0, y)
    got = decoded_classes(x).clamp(min=0)
    assert torch.equal(got, want), f"{int((got != want).sum())} pixels differ"


def test_random_crops_and_flips_keep_labels_aligned_pixel_for_pixel(labelled):
    source = build_source(cfg_for(labelled), batch=2, seed=3)
    flipped = 0
    for batch in source.batches(0, 12):
        assert batch["A_labels"].dtype == torch.int64 and batch["A_labels"].shape == (2, 24, 24)
        assert "B_labels" not in batch  # domain B declares no labels
        for x, y in zip(batch["A"], batch["A_labels"]):
            check_aligned(x, y)
            mirrored = y.flip(-1)
            flipped += not torch.equal(decoded_classes(x).clamp(min=0), torch.where(mirrored == 255, 0, mirrored))
    source.close()
    assert flipped > 0  # the check above can fail: a mirrored map does not match


@pytest.mark.parametrize("preprocess", ["resize_and_crop", "scale_width_and_crop"])
def test_resized_labels_are_nearest_neighbour_and_aligned(tmp_path, preprocess):
    rng = np.random.default_rng(7)
    image, labels = coded_scene(rng, 40, 32, 8)
    aug = Augment(preprocess, 64, 48, True)
    for seed in range(6):
        x, y = augment_together(aug, (image, labels), torch.Generator().manual_seed(seed))
        assert y.dtype == torch.int64 and set(y.unique().tolist()) <= set(labels.flatten().tolist())
        # away from class edges the bicubic image and the nearest label map agree exactly
        grey = ((x[0] + 1) * 127.5)
        uniform = torch.nn.functional.max_pool2d(y[None, None].float(), 9, 1, 4)[0, 0] == \
            -torch.nn.functional.max_pool2d(-y[None, None].float(), 9, 1, 4)[0, 0]
        inside = uniform & (y != 255)
        inside[:4] = False  # the crop cuts through classes it cannot see beyond its edges
        inside[-4:] = inside[:, :4] = inside[:, -4:] = False
        assert inside.float().mean() > 0.15
        assert torch.allclose(grey[inside], (y[inside] * LEVEL).float(), atol=1.0)
        # the draws are Augment's own: the image alone comes out the same
        alone = aug(image, torch.Generator().manual_seed(seed))
        assert torch.equal(alone, x)


def test_labelled_stream_resumes_exactly(labelled):
    whole = [b for b in build_source(cfg_for(labelled), batch=2, seed=5).batches(0, 6)]
    tail = [b for b in build_source(cfg_for(labelled), batch=2, seed=5).batches(3, 6)]
    for a, b in zip(whole[3:], tail):
        assert torch.equal(a["A"], b["A"]) and torch.equal(a["A_labels"], b["A_labels"])


def test_a_missing_label_map_is_named_before_training(labelled):
    (labelled / "trainA_labels" / "s002.png").unlink()
    with pytest.raises(DataError, match=r"data\.a\.labels: the image .*s002\.png has no label map .*trainA_labels/s002\.png"):
        build_source(cfg_for(labelled), batch=1)


@pytest.mark.parametrize("on_corrupt", ["skip", "raise"])
def test_a_bad_label_map_follows_on_corrupt(labelled, on_corrupt):
    bad = np.full((30, 40), 2, dtype=np.int64)
    bad[3, 4] = 9  # out of range: classes 0..4
    (labelled / "trainA_labels" / "s000.png").write_bytes(encode_label_map(bad))
    (labelled / "trainA_labels" / "s001.png").write_bytes(encode_label_map(np.zeros((20, 40), np.int64)))
    source = build_source(cfg_for(labelled, on_corrupt=on_corrupt), batch=6, seed=0)
    if on_corrupt == "raise":
        with pytest.raises(DataError, match=r"s00[01]\.png (holds 9 at x=4, y=3|is 40x20, its image is 40x30)"):
            next(source.batches(0, 1))
    else:
        batch = next(source.batches(0, 1))
        assert batch["skipped"] == 2
        for x, y in zip(batch["A"], batch["A_labels"]):
            check_aligned(x, y)
    source.close()


def shard_cfg(out, **data) -> DataConfig:
    return cfg_for(None, source="shards", shards_a=str(out / "trainA-000000.tar"),
                   shards_b=str(out / "trainB-000000.tar"), shuffle_buffer=4, **data)


def test_shards_carry_label_maps_round_trip(labelled, tmp_path):
    import json

    from cgx.data.shard_writer import write_shards

    out = tmp_path / "shards"
    write_shards(labelled, out, progress=False)
    index = json.loads((out / "trainA.json").read_text())
    assert index["labels"]["field"] == "label.png" and "labels" not in json.loads((out / "trainB.json").read_text())
    seen = 0
    whole = list(build_source(shard_cfg(out), batch=2, seed=1).batches(0, 6))
    for batch in whole:
        assert batch["A_labels"].shape == (2, 24, 24) and "B_labels" not in batch
        for x, y in zip(batch["A"], batch["A_labels"]):
            check_aligned(x, y)
            seen += 1
    assert seen == 12
    tail = list(build_source(shard_cfg(out), batch=2, seed=1).batches(4, 6))
    for a, b in zip(whole[4:], tail):
        assert torch.equal(a["A_labels"], b["A_labels"]) and torch.equal(a["A"], b["A"])
    # the same shards asked for labels of B, which they do not hold: named when the source is built
    with pytest.raises(DataError, match=r"data\.shards_b: data\.b\.labels asks for label maps, and the shards of .*trainB\.json hold none"):
        build_source(shard_cfg(out, b=ImageSpec(labels=LabelSpec(classes=2))), batch=1)


def test_shards_resize_labels_nearest_and_refuse_bad_ones(labelled, tmp_path):
    from cgx.data.shard_writer import write_shards

    (labelled / "trainA_labels" / "s001.png").write_bytes(encode_label_map(np.zeros((10, 10), np.int64)))
    results = write_shards(labelled, tmp_path / "shards", resize=60, fmt="png", progress=False)
    a = next(r for r in results if r.name == "trainA")
    assert a.total == 5 and "is 10x10, its image is 40x30" in a.skipped[0][1]
    source = build_source(shard_cfg(tmp_path / "shards", preprocess="crop", crop_size=40), batch=5, seed=0)
    batch = next(source.batches(0, 1))
    assert batch["skipped"] == 0 and set(batch["A_labels"].unique().tolist()) <= set(range(CLASSES)) | {255}
    (labelled / "trainA_labels" / "s003.png").unlink()
    with pytest.raises(DataError, match=r"s003\.png has no label map"):
        write_shards(labelled, tmp_path / "shards2", progress=False)
