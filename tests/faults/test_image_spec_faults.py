"""Files that do not fit their domain's image spec (issue 19), and EXIF orientation (issue 17, case 9):
each mismatch gets its one-line message naming the file and what the domain accepts, or is skipped and
counted; a phone photo (orientation tag 6) trains and translates the way a viewer shows it."""
from __future__ import annotations

import io
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import TINY_RECIPE, merge

from cgx.config import DataConfig, ImageSpec
from cgx.data import build_source
from cgx.data.decode import load
from cgx.data.images import load_rgb
from cgx.errors import CgxError, DataError
from cgx.translate import translate_folder

tifffile = pytest.importorskip("tifffile")

GREY16 = ImageSpec(1, 16)


def write_cases(folder: Path) -> dict[str, tuple[ImageSpec, str]]:
    """file name -> (domain spec it is read for, what the one-line message must say)."""
    folder.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), (1, 2, 3)).save(folder / "rgb_in_grey.png")
    Image.fromarray(np.full((8, 8), 40000, np.uint16)).save(folder / "wide_in_8bit.png")
    Image.new("RGBA", (8, 8)).save(folder / "rgba_in_rgb16.png")
    tifffile.imwrite(folder / "int16.tif", np.zeros((8, 8, 4), np.int16), photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(folder / "float_in_16bit.tif", np.zeros((8, 8, 4), np.float32), photometric="minisblack", planarconfig="contig")
    tifffile.imwrite(folder / "three_bands_in_four.tif", np.zeros((8, 8, 3), np.uint16), photometric="minisblack", planarconfig="contig")
    (folder / "empty.png").write_bytes(b"")
    return {
        "rgb_in_grey.png": (GREY16, "is RGB 8-bit (8x8), its domain is grey 16-bit: accepted: grey (1-channel)"),
        "wide_in_8bit.png": (ImageSpec(1, 8), "is grey 16-bit (8x8), its domain is grey 8-bit: accepted: grey (1-channel) files of 8-bit"),
        "rgba_in_rgb16.png": (ImageSpec(3, 16), "is 4-channel 8-bit (8x8), its domain is RGB 16-bit: accepted: grey or RGB"),
        "int16.tif": (ImageSpec(4, 16), "TIFF samples of type int16; accepted: 8-bit or 16-bit unsigned integers, or float"),
        "float_in_16bit.tif": (ImageSpec(4, 16), "is 4-channel float (8x8), its domain is 4-channel 16-bit: accepted: 4-channel files of 8- or 16-bit"),
        "three_bands_in_four.tif": (ImageSpec(4, 16), "is RGB 16-bit (8x8), its domain is 4-channel 16-bit: accepted: 4-channel"),
        "empty.png": (GREY16, "the file is empty"),
    }


def test_each_mismatch_has_its_one_line_message(tmp_path):
    for name, (spec, expect) in write_cases(tmp_path).items():
        with pytest.raises(DataError) as e:
            load(tmp_path / name, spec)
        message = str(e.value)
        assert name in message and expect in message, message
        assert "\n" not in message and isinstance(e.value, CgxError)


def folder_data(tmp_path: Path) -> Path:
    """trainA: 16-bit grey, plus an RGB file and an 8-bit grey file (converted, not skipped)."""
    root = tmp_path / "data"
    for d in ("trainA", "trainB"):
        (root / d).mkdir(parents=True)
    for i in range(3):
        Image.fromarray(np.full((34, 34), 300 * (i + 1), np.uint16)).save(root / "trainA" / f"a{i}.png")
        Image.new("RGB", (34, 34), (i, 2, 3)).save(root / "trainB" / f"b{i}.png")
    Image.new("RGB", (34, 34), (9, 9, 9)).save(root / "trainA" / "a3_rgb.png")
    Image.new("L", (34, 34), 7).save(root / "trainA" / "a4_grey8.png")
    return root


def test_folder_source_skips_and_counts_or_raises_naming_the_file(tmp_path, caplog):
    root = folder_data(tmp_path)
    cfg = DataConfig(root=str(root), a=GREY16, workers=0, load_size=32, crop_size=32, flip=False)
    source = build_source(cfg, batch=5)
    with caplog.at_level(logging.WARNING, logger="cgx.data"):
        batch = next(iter(source.batches(0, 1)))
    assert batch["A"].shape == (5, 1, 32, 32) and batch["skipped"] == 1
    assert any("a3_rgb.png" in r.getMessage() and "accepted" in r.getMessage() for r in caplog.records)
    grey8 = load(root / "trainA" / "a4_grey8.png", GREY16)  # 8-bit grey in a 16-bit domain: converted
    assert torch.allclose((grey8 + 1) / 2 * 65535, torch.full_like(grey8, 7 * 257), atol=0.01)

    cfg.on_corrupt = "raise"
    with pytest.raises(DataError, match=r"a3_rgb\.png is RGB 8-bit .*data\.on_corrupt=raise") as e:
        for _ in build_source(cfg, batch=5).batches(0, 1):
            pass
    assert "\n" not in str(e.value)


# --- EXIF orientation (issue 17 case 9) -------------------------------------------------------------

def phone_photo(path: Path, w: int = 48, h: int = 32) -> np.ndarray:
    """A JPEG stored landscape (w x h) with orientation tag 6 (shown rotated 90° clockwise, h x w tall);
    returns the stored pixels."""
    stored = np.zeros((h, w, 3), np.uint8)
    stored[:, : w // 2] = (250, 10, 10)  # left half red, right half blue as stored
    stored[:, w // 2:] = (10, 10, 250)
    image = Image.fromarray(stored)
    exif = image.getexif()
    exif[0x0112] = 6
    image.save(path, format="JPEG", quality=95, exif=exif.tobytes())
    return stored


def test_exif_orientation_is_applied_in_every_decode(tmp_path):
    phone_photo(tmp_path / "p.jpg")
    rgb = np.asarray(load_rgb(tmp_path / "p.jpg"))
    assert rgb.shape == (48, 32, 3)  # shown tall
    assert rgb[5, 16, 0] > 200 and rgb[-5, 16, 2] > 200  # rotated clockwise: the stored left (red) is on top
    grey = load(tmp_path / "p.jpg", ImageSpec(3, 16))  # the spec decode turns it the same way
    assert grey.shape == (3, 48, 32) and grey[0, 5, 16] > 0.5 and grey[2, -5, 16] > 0.5


def test_exif_orientation_in_training_decode_and_translate(tmp_path, demo_data, tiny_run):
    root = tmp_path / "data"
    for d in ("trainA", "trainB"):
        (root / d).mkdir(parents=True)
        phone_photo(root / d / "p.jpg")
    cfg = DataConfig(root=str(root), workers=0, preprocess="none", crop_size=32, flip=False)
    x = next(iter(build_source(cfg, batch=1).batches(0, 1)))["A"][0]
    assert x.shape == (3, 48, 32) and x[0, 2, 16] > 0.5 and x[2, -2, 16] > 0.5  # shown tall: red on top

    src = tmp_path / "photos"
    src.mkdir()
    phone_photo(src / "p.jpg")
    Image.new("RGB", (32, 48)).save(src / "tall.png")  # stored tall, same shown size: one batch with the photo
    done = translate_folder(tiny_run, src, tmp_path / "out", progress=False)
    for f in done.written:
        with Image.open(f) as im:
            assert im.size == (32, 48) and 0x0112 not in im.getexif()  # upright, as the user sees the input
