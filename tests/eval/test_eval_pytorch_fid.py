"""cgx's FID equals pytorch-fid's on the same images and the same weights (its hub cache seeded
with the converted file; nothing downloaded)."""
from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from eval_fixtures import no_network, weights  # noqa: F401 -- fixtures
from PIL import Image

from cgx.eval.image_set import ImageSet
from cgx.eval.inception import HUB_NAMES, InceptionFeatures
from cgx.eval.fid_kid import fid


def write_images(folder, n: int, seed: int, size: int = 299):
    """Smooth coloured patterns (upsampled noise), as PNG, so that the features vary."""
    folder.mkdir(parents=True)
    g = torch.Generator().manual_seed(seed)
    for i in range(n):
        low = torch.rand(1, 3, 6, 6, generator=g)
        img = torch.nn.functional.interpolate(low, size=(size, size), mode="bicubic", align_corners=False)
        arr = (img[0].clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()
        Image.fromarray(arr).save(folder / f"{i:03d}.png")
    return folder


def test_fid_equals_pytorch_fid(weights, tmp_path, monkeypatch, no_network):
    from pytorch_fid.fid_score import calculate_frechet_distance
    from pytorch_fid.inception import InceptionV3

    hub = tmp_path / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    os.symlink(weights.path, hub / HUB_NAMES[0])  # pytorch-fid's own file name in its hub cache
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    a, b = write_images(tmp_path / "a", 4, 0), write_images(tmp_path / "b", 4, 1)

    extractor = InceptionFeatures(weights.path)
    ours_a = extractor(torch.stack(ImageSet(a, "a").load(range(4))))
    ours_b = extractor(torch.stack(ImageSet(b, "b").load(range(4))))
    ours = fid(ours_a, ours_b)

    # pytorch-fid's network from its hub cache; 299 px images need no resize, and it is given the
    # TF graph's input scaling (x - 128) / 128 (its own normalize_input is 2 * x / 255 - 1).
    net = InceptionV3([InceptionV3.BLOCK_INDEX_BY_DIM[2048]], resize_input=False, normalize_input=False).eval()

    def stats(folder):
        x = torch.stack(ImageSet(folder, "x").load(range(4))).float()
        with torch.no_grad():
            f = net((x - 128) / 128)[0].squeeze(-1).squeeze(-1).double().numpy()
        return f.mean(0), np.cov(f, rowvar=False)

    theirs = calculate_frechet_distance(*stats(a), *stats(b))
    print(f"cgx FID {ours:.6f}, pytorch-fid FID {theirs:.6f}, difference {abs(ours - theirs):.3g}")
    assert ours > 1.0
    assert ours == pytest.approx(theirs, abs=1e-3)
    assert no_network == []
