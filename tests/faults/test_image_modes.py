"""Case 6: images of every mode become the right 8-bit RGB, wherever cgx reads them (one function)."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from cgx.config import DataConfig
from cgx.data import build_source
from cgx.data.images import BACKGROUND, load_rgb, to_rgb
from cgx.data.shard_writer import write_shards
from cgx.data.transforms import to_tensor

from faultkit import save16


def test_16_bit_png_is_scaled_not_clipped_to_white(tmp_path):
    expect = save16(tmp_path / "x.png")
    with Image.open(tmp_path / "x.png") as im:
        assert im.mode in ("I;16", "I")  # what PIL gives a 16-bit PNG
    rgb = np.asarray(load_rgb(tmp_path / "x.png"))
    assert rgb.dtype == np.uint8 and rgb.shape == (*expect.shape, 3)
    assert (rgb == expect[..., None]).all()
    assert rgb.min() == 0 and rgb.max() == 255 and len(np.unique(rgb)) > 200  # a ramp, not all white


def test_32_bit_integer_grey_uses_the_16_bit_range():
    wide = np.array([[0, 257, 32896, 65535, 70000, -5]], dtype=np.int32)
    rgb = np.asarray(to_rgb(Image.fromarray(wide, "I")))
    assert rgb[0, :, 0].tolist() == [0, 1, 128, 255, 255, 0]


def test_transparent_pixels_are_composited_onto_white():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)   # opaque: kept
    rgba[0, 1] = (10, 20, 30, 0)     # transparent: background
    rgba[1, 0] = (0, 0, 0, 128)      # half: blended
    out = np.asarray(to_rgb(Image.fromarray(rgba, "RGBA")))
    assert out[0, 0].tolist() == [10, 20, 30]
    assert out[0, 1].tolist() == list(BACKGROUND)
    assert 120 <= out[1, 0, 0] <= 135
    la = Image.fromarray(rgba[..., [0, 3]], "LA")
    assert np.asarray(to_rgb(la))[0, 1].tolist() == list(BACKGROUND)


def test_palette_with_a_transparent_colour():
    p = Image.new("P", (2, 1))
    p.putpalette([200, 0, 0, 0, 0, 200] + [0] * 762)
    p.putpixel((0, 0), 0)
    p.putpixel((1, 0), 1)
    p.info["transparency"] = 1
    buf = io.BytesIO()
    p.save(buf, "PNG")
    with Image.open(io.BytesIO(buf.getvalue())) as im:
        assert im.mode == "P" and "transparency" in im.info
        out = np.asarray(to_rgb(im))
    assert out[0, 0].tolist() == [200, 0, 0] and out[0, 1].tolist() == list(BACKGROUND)
    p.info.pop("transparency")
    assert np.asarray(to_rgb(p))[0, 1].tolist() == [0, 0, 200]


@pytest.mark.parametrize("mode,value,expect", [
    ("1", 1, [255, 255, 255]),
    ("L", 77, [77, 77, 77]),
    ("CMYK", (0, 255, 255, 0), [255, 0, 0]),
    ("RGB", (1, 2, 3), [1, 2, 3]),
])
def test_other_modes(mode, value, expect):
    out = to_rgb(Image.new(mode, (3, 2), value))
    assert out.mode == "RGB" and np.asarray(out)[1, 2].tolist() == expect


def shard_cfg(out, **kw) -> DataConfig:
    return DataConfig(source="shards", shards_a=f"{out}/trainA-000000.tar", shards_b=f"{out}/trainB-000000.tar",
                      preprocess="none", crop_size=34, load_size=34, flip=False, workers=0, shuffle_buffer=0, **kw)


@pytest.mark.parametrize("fmt", [None, "png"], ids=["original-bytes", "re-encoded"])
def test_16_bit_pngs_through_shards(tmp_path, fmt):
    """`cgx shards` keeps (or re-encodes) them, the shard loader decodes them: the same values."""
    for d in "AB":
        (tmp_path / f"train{d}").mkdir()
        expect = save16(tmp_path / f"train{d}" / "x.png", 34, 34)
    write_shards(tmp_path, tmp_path / "out", fmt=fmt, workers=1, progress=False)
    batch = next(iter(build_source(shard_cfg(tmp_path / "out"), batch=1).batches(0, 1)))
    want = to_tensor(Image.fromarray(expect).convert("RGB"))
    assert torch.equal(batch["A"][0], want) and torch.equal(batch["B"][0], want)


def test_16_bit_pngs_through_the_folder_source(tmp_path):
    for d in "AB":
        (tmp_path / f"train{d}").mkdir()
        expect = save16(tmp_path / f"train{d}" / "x.png", 34, 34)
    cfg = DataConfig(root=str(tmp_path), preprocess="none", crop_size=34, load_size=34, flip=False, workers=0)
    batch = next(iter(build_source(cfg, batch=1).batches(0, 1)))
    assert torch.equal(batch["A"][0], to_tensor(Image.fromarray(expect).convert("RGB")))


def test_translate_reads_a_16_bit_png_as_its_values(tiny_run, tmp_path):
    """translate and the generator see the scaled image: the same output as for its 8-bit version."""
    from cgx.translate import translate_folder

    (tmp_path / "in16").mkdir()
    (tmp_path / "in8").mkdir()
    expect = save16(tmp_path / "in16" / "x.png", 32, 32)
    Image.fromarray(expect).save(tmp_path / "in8" / "x.png")
    for name in ("in16", "in8"):
        translate_folder(tiny_run, tmp_path / name, tmp_path / f"out_{name}", progress=False)
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out_in16" / "x.png")),
                          np.asarray(Image.open(tmp_path / "out_in8" / "x.png")))
