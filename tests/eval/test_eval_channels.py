"""Evaluation of grey and N-channel domains (issue 19): grey scored with the channel replicated, N bands
by eval.bands or FID/KID skipped with the reason while cycle L1 is still reported. A stand-in feature
extractor (what Inception sees is checked, not Inception itself)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from cgx.config import ImageSpec, load_config
from cgx.data.demo import generate
from cgx.distributed import DDPStrategy, world_info_from_env
from cgx.errors import ConfigError
from cgx.eval.evaluate import evaluate, report, table
from cgx.eval.image_set import ImageSet
from cgx.eval.inception import FEATURES

pytest.importorskip("tifffile")


class SeenImages(nn.Module):
    """Records the uint8 batches it is given; features: a fixed projection of the pixel means."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[torch.Tensor] = []

    def forward(self, u8: torch.Tensor) -> torch.Tensor:
        assert u8.dtype == torch.uint8 and u8.shape[1] == 3
        self.seen.append(u8)
        means = u8.double().mean(dim=(2, 3))
        g = torch.Generator().manual_seed(0)
        return means @ torch.rand(3, FEATURES, generator=g, dtype=torch.float64) + torch.rand(
            u8.shape[0], FEATURES, generator=g, dtype=torch.float64)


class Const(nn.Module):
    def __init__(self, channels: int) -> None:
        super().__init__()
        self.channels = channels

    def forward(self, x):
        return x.mean(1, keepdim=True).expand(-1, self.channels, -1, -1).contiguous()


@pytest.mark.parametrize("bands", [None, [4, 2, 0]])
def test_grey_and_band_domains(tmp_path, bands):
    grey = generate(tmp_path / "grey", n_train=0, n_test=2, size=16, a=ImageSpec(1, 16))
    multi = generate(tmp_path / "multi", n_train=0, n_test=2, size=16, a=ImageSpec(8, 16))
    strategy = DDPStrategy(world_info_from_env())
    try:
        seen = SeenImages()
        a = ImageSet(grey / "testA", "--a", image=ImageSpec(1, 16))
        b = ImageSet(multi / "testA", "--b", image=ImageSpec(8, 16))
        results = evaluate(Const(8), Const(1), a, b, ("AtoB", "BtoA"), seen, strategy, progress=False, bands=bands)
    finally:
        strategy.close()
    assert results["BtoA"]["FID"] is not None  # into grey: replicated
    assert results["AtoB"]["cycle_L1"] >= 0 and results["BtoA"]["cycle_L1"] >= 0
    if bands is None:
        assert results["AtoB"]["FID"] is None and "--b has 8 channels" in results["AtoB"]["skipped"]
        assert "FID/KID skipped" in table(results)
    else:
        assert results["AtoB"]["FID"] is not None
    grey_seen = [u8 for u8 in seen.seen if torch.equal(u8[:, 0], u8[:, 2])]
    assert grey_seen  # grey images reached the extractor with R = G = B

    class W:
        path, sha256, source = "w", "0", "test"

    record = report(results, step=0, checkpoint="c", set_a=a, set_b=b, weights=W, world_size=1, command="t", bands=bands)
    assert record["images"]["A"]["scored_as"].startswith("grey, the channel replicated")
    assert record["images"]["B"]["scored_as"] == ("bands [4, 2, 0] as R, G, B" if bands else
                                                  "not scored (FID/KID need RGB; no eval.bands)")


def test_a_best_metric_that_cannot_be_computed_is_refused():
    base = ["data.b.channels=8", "method.identity_weight=0", "eval.every=1000", "train.ckpt_every=1000"]
    with pytest.raises(ConfigError, match=r"eval\.metric=FID_AtoB needs FID/KID of images of data\.b \(8 channels\)"):
        load_config(None, base)
    load_config(None, base + ["eval.metric=FID_BtoA"])
    load_config(None, base + ["eval.bands=[0,1,2]"])
