"""Paired data: the aligned split and the joint crop/flip keep A and B pixel-aligned; folder and shard
sources resume exactly; `cgx shards --paired` from an aligned folder or two folders matched by name."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgx.config import config_from_dict
from cgx.data import build_source
from cgx.data.paired import JointAugment, split_aligned
from cgx.data.paired_writer import write_paired_shards
from cgx.data.transforms import Augment
from cgx.errors import ConfigError, DataError


def coded_pair(w: int = 40, h: int = 30) -> Image.Image:
    """An aligned image whose every pixel encodes its position: A's (x, y, 0), B's (x, y, 255). After any
    joint crop/flip, B's first two channels must equal A's."""
    arr = np.zeros((h, 2 * w, 3), dtype=np.uint8)
    ys, xs = np.mgrid[0:h, 0:w]
    for side, blue in ((0, 0), (1, 255)):
        arr[:, side * w:(side + 1) * w, 0] = xs * 5
        arr[:, side * w:(side + 1) * w, 1] = ys * 7
        arr[:, side * w:(side + 1) * w, 2] = blue
    return Image.fromarray(arr)


def test_aligned_split_is_exact():
    image = coded_pair()
    a, b = split_aligned(image, "x.png")
    assert a.size == b.size == (40, 30)
    a, b = np.asarray(a), np.asarray(b)
    assert (a[..., 2] == 0).all() and (b[..., 2] == 255).all()
    assert np.array_equal(a[..., :2], b[..., :2])
    t = torch.arange(48.).reshape(2, 4, 6)
    ta, tb = split_aligned(t, "t")
    assert torch.equal(ta, t[..., :3]) and torch.equal(tb, t[..., 3:])
    with pytest.raises(DataError, match="odd.png: an aligned image .* width must be even; it is 41x30"):
        split_aligned(Image.new("RGB", (41, 30)), "odd.png")


@pytest.mark.parametrize("tensor", [False, True])
@pytest.mark.parametrize("preprocess", ["crop", "none"])
def test_joint_crop_and_flip_keep_the_pixels_aligned(preprocess, tensor):
    aug = JointAugment(Augment(preprocess, load_size=40, crop_size=16, flip=True))
    a, b = split_aligned(coded_pair(), "p")
    if tensor:  # the float path (non-default image specs)
        from cgx.data.transforms import to_tensor
        a, b = to_tensor(a), to_tensor(b)
    flips = set()
    for seed in range(24):
        x, y = aug((a, b), torch.Generator().manual_seed(seed))
        assert torch.equal(x[:2], y[:2]), seed            # same positions in A and B
        assert (x[2] == -1).all() and (y[2] == 1).all()
        flips.add(bool(x[0, 0, 0] > x[0, 0, -1]))          # x decreases left to right when flipped
    assert flips == {True, False}


def test_joint_draws_are_the_unpaired_augmentations_draws():
    """One set of draws, in Augment's order: the pair's A is exactly what Augment makes of A alone."""
    aug = Augment("resize_and_crop", load_size=36, crop_size=32, flip=True)
    a, b = split_aligned(coded_pair(), "p")
    for seed in range(8):
        x, y = JointAugment(aug)((a, b), torch.Generator().manual_seed(seed))
        assert torch.equal(x, aug(a, torch.Generator().manual_seed(seed)))
        assert torch.equal(y, aug(b, torch.Generator().manual_seed(seed)))


def paired_cfg(root, **data):
    return config_from_dict({"data": {"paired": True, "root": str(root), "load_size": 36, "crop_size": 32,
                                      "workers": 0, **data}})


def take(source, start, stop):
    return [(b["A"].clone(), b["B"].clone()) for b in source.batches(start, stop)]


@pytest.mark.parametrize("kind", ["folder", "shards"])
def test_paired_sources_resume_exactly(kind, paired_data, tmp_path):
    if kind == "shards":
        write_paired_shards(paired_data, tmp_path, max_count=3, progress=False)
        cfg = paired_cfg(paired_data, source="shards", shards=str(tmp_path / "train-{000000..000002}.tar"),
                         shuffle_buffer=4, workers=2)
    else:
        cfg = paired_cfg(paired_data, workers=2)
    for rank in range(2):
        source = build_source(cfg.data, batch=2, rank=rank, world=2, seed=3)
        straight = take(source, 0, 6)
        resumed = take(build_source(cfg.data, batch=2, rank=rank, world=2, seed=3), 3, 6)
        for (a1, b1), (a2, b2) in zip(straight[3:], resumed):
            assert torch.equal(a1, a2) and torch.equal(b1, b2)
    # each pair's A and B come from the same demo scene: the same layout, so the same edges
    a, b = straight[0]
    assert a.shape == b.shape == (2, 3, 32, 32)


def test_paired_shards_hold_the_same_pairs_as_the_folder(paired_data, tmp_path):
    """Shards from the aligned folder and from two folders matched by name decode to the folder's pairs."""
    from cgx.data.paired import load_aligned, sample_pair
    from cgx.data.shards import read_shard

    aligned = write_paired_shards(paired_data, tmp_path / "aligned", progress=False)
    assert [r.name for r in aligned] == ["test", "train"] and aligned[1].total == 8
    folders = {d: tmp_path / d for d in "ab"}
    files = sorted((paired_data / "train").iterdir())
    for f in files:
        a, b = load_aligned(f)
        for d, im in zip("ab", (a, b)):
            folders[d].mkdir(exist_ok=True)
            im.save(folders[d] / f.name)
    matched = write_paired_shards(folders["a"], tmp_path / "matched", b=folders["b"], prefix="train", progress=False)
    for result, out in ((aligned[1], tmp_path / "aligned"), (matched[0], tmp_path / "matched")):
        samples = list(read_shard(str(out / result.shards[0]["name"]), 0, 8))
        for f, sample in zip(files, samples):
            want, got = load_aligned(f), sample_pair(sample)
            assert all(np.array_equal(np.asarray(w), np.asarray(g)) for w, g in zip(want, got)), f.name


def test_two_folders_with_unmatched_names_are_named(tmp_path):
    for d, names in (("a", ["1", "2", "3"]), ("b", ["1", "3", "4"])):
        (tmp_path / d).mkdir()
        for n in names:
            Image.new("RGB", (8, 8)).save(tmp_path / d / f"{n}.png")
    with pytest.raises(DataError, match=r"1 in .*a have no match in .*b \(2\); 1 in .*b have none in .*a \(4\)"):
        write_paired_shards(tmp_path / "a", tmp_path / "out", b=tmp_path / "b", progress=False)


def test_recipe_errors_name_the_keys(paired_data, tmp_path, demo_shards):
    with pytest.raises(ConfigError, match="data.shards must be set when data.source=shards and data.paired=true"):
        paired_cfg(paired_data, source="shards")
    with pytest.raises(ConfigError, match="data.shards_a is for unpaired shards"):
        paired_cfg(paired_data, source="shards", shards="x.tar", shards_a="y.tar")
    with pytest.raises(ConfigError, match="data.shards names paired shards, but data.paired=false"):
        config_from_dict({"data": {"shards": "x.tar"}})
    cfg = paired_cfg(paired_data, source="shards", shards=str(demo_shards / "trainA-{000000..000002}.tar"))
    with pytest.raises(DataError, match="indexes unpaired shards"):
        build_source(cfg.data, batch=1)
    write_paired_shards(paired_data, tmp_path, progress=False)
    unpaired = config_from_dict({"data": {"source": "shards", "shards_a": str(tmp_path / "train-000000.tar"),
                                          "shards_b": str(demo_shards / "trainB-{000000..000002}.tar")}})
    with pytest.raises(DataError, match="indexes paired shards .* set data.paired=true"):
        build_source(unpaired.data, batch=1)
    with pytest.raises(DataError, match="data.paired=true reads the aligned layout"):
        build_source(paired_cfg(paired_data.parent).data, batch=1)


@pytest.mark.parametrize("on_corrupt", ["skip", "raise"])
def test_an_unsplittable_aligned_image_follows_on_corrupt(tmp_path, on_corrupt):
    folder = tmp_path / "d" / "train"
    folder.mkdir(parents=True)
    for i in range(3):
        coded_pair(20, 20).save(folder / f"{i}.png")
    Image.new("RGB", (41, 20)).save(folder / "1.png")  # odd width: no A | B halves
    cfg = paired_cfg(tmp_path / "d", load_size=20, crop_size=16, on_corrupt=on_corrupt)
    source = build_source(cfg.data, batch=1, seed=0)
    if on_corrupt == "raise":
        with pytest.raises(DataError, match=r"1.png: an aligned image holds A \| B side by side.* 41x20"):
            take(source, 0, 3)
        return
    batches = list(source.batches(0, 3))
    assert sum(b["skipped"] for b in batches) == 1
    for b in batches:
        assert torch.equal(b["A"][:, :2], b["B"][:, :2])  # the stand-in is a whole pair too
