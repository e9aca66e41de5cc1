"""Domains beyond 8-bit RGB (issue 19): grey, 16-bit and multi-band images end to end: the one decode
per spec, tensor augmentation, shards that record their spec, training, resume and translate."""
from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from conftest import TINY_RECIPE, assert_same_weights, load_weights, merge

from cgx.config import DataConfig, ImageSpec, load_config
from cgx.data import build_source
from cgx.data.decode import decode, encode, fit, load, orient, read_samples, suffix, upright
from cgx.data.demo import generate
from cgx.data.images import load_rgb
from cgx.data.shard_writer import write_shards
from cgx.data.transforms import Augment, to_tensor
from cgx.errors import ConfigError, DataError
from cgx.run import main as run_main
from cgx.translate import translate_folder

tifffile = pytest.importorskip("tifffile")

GREY16 = ImageSpec(channels=1, depth=16)


@pytest.fixture(scope="module")
def grey16_data(tmp_path_factory) -> Path:
    """A: 16-bit grey PNG, B: 8-bit RGB PNG; 4 train and 2 test images per domain, 32 px."""
    return generate(tmp_path_factory.mktemp("g16") / "data", n_train=4, n_test=2, size=32, a=GREY16)


def tiny(tmp_path: Path, changes: dict) -> Path:
    recipe = merge(TINY_RECIPE, merge({"method": {"name": "cyclegan", "identity_weight": 0},
                                       "train": {"run_dir": str(tmp_path / "run"), "steps": 4, "ckpt_every": 2,
                                                 "image_every": 2, "batch_size": 2}}, changes))
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


# --- the default spec is today's path -------------------------------------------------------------

def test_default_spec_is_todays_8_bit_rgb_path_bit_for_bit(demo_data, tmp_path):
    """decode() for {channels: 3, depth: 8} is to_rgb's image, and the folder source's batches are
    exactly those of load_rgb + the PIL augmentation, for RGB, grey, 16-bit and RGBA files."""
    files = sorted((demo_data / "trainA").glob("*.png"))[:2]
    wide = np.linspace(0, 65535, 36 * 40).astype(np.uint16).reshape(36, 40)
    Image.fromarray(wide).save(tmp_path / "wide.png")
    Image.new("L", (40, 36), 77).save(tmp_path / "grey.png")
    Image.new("RGBA", (40, 36), (1, 2, 3, 128)).save(tmp_path / "rgba.png")
    aug = Augment("resize_and_crop", 36, 32, True)
    for f in files + [tmp_path / "wide.png", tmp_path / "grey.png", tmp_path / "rgba.png"]:
        image = decode(f.read_bytes(), str(f), ImageSpec())
        assert isinstance(image, Image.Image) and image.tobytes() == load_rgb(f).tobytes()
        for seed in range(3):
            got = aug(image, torch.Generator().manual_seed(seed))
            want = aug(load_rgb(f), torch.Generator().manual_seed(seed))
            assert torch.equal(got, want)
    assert DataConfig().a == ImageSpec(3, 8) and DataConfig().b == ImageSpec(3, 8)


def test_tensor_augmentation_draws_as_the_pil_path_does():
    """Crop and flip of the tensor path (any channel count) fall where the PIL path's do."""
    rgb = np.random.default_rng(0).integers(0, 256, (40, 44, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    aug = Augment("crop", 36, 32, True)
    for seed in range(6):
        want = aug(image, torch.Generator().manual_seed(seed))
        got = aug(to_tensor(image), torch.Generator().manual_seed(seed))
        assert torch.equal(got, want)
    resized = Augment("resize_and_crop", 36, 32, True)(torch.rand(8, 50, 60) * 2 - 1, torch.Generator().manual_seed(0))
    assert resized.shape == (8, 32, 32) and resized.abs().max() <= 1


# --- reading and writing ---------------------------------------------------------------------------

def test_16_bit_values_survive_decode_and_encode(tmp_path):
    wide = (np.arange(64 * 48, dtype=np.int64) * 21 % 65536).astype(np.uint16).reshape(48, 64)
    buf = io.BytesIO()
    Image.fromarray(wide).save(buf, format="PNG")
    x = decode(buf.getvalue(), "wide.png", GREY16)
    assert x.shape == (1, 48, 64) and x.dtype == torch.float32
    back = np.asarray(Image.open(io.BytesIO(encode(x, GREY16))))
    assert back.dtype == np.uint16 and np.array_equal(back, wide)
    rgb16 = ImageSpec(3, 16)
    y = torch.rand(3, 8, 10) * 2 - 1
    samples, depth = read_samples(encode(y, rgb16), "rgb16.png")  # 48-bit PNG, through pypng
    assert depth == 16 and samples.shape == (8, 10, 3) and samples.max() > 255
    assert torch.allclose(fit(samples, depth, rgb16, "x"), y, atol=1 / 65535)
    for n, depth in ((8, 16), (4, "float"), (2, 8)):
        spec = ImageSpec(n, depth)
        z = torch.rand(n, 6, 7) * 2 - 1
        assert suffix(spec) == ".tif"
        data = encode(z, spec)
        assert torch.allclose(decode(data, "z.tif", spec), z, atol=1 / 255 if depth == 8 else 1e-4)


def test_tiff_layouts_planar_and_one_band_a_page(tmp_path):
    bands = np.random.default_rng(1).integers(0, 65536, (5, 6, 7), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "planar.tif", bands, photometric="minisblack", planarconfig="separate")
    tifffile.imwrite(tmp_path / "contig.tif", np.moveaxis(bands, 0, -1), photometric="minisblack", planarconfig="contig")
    spec = ImageSpec(5, 16)
    a, b = load(tmp_path / "planar.tif", spec), load(tmp_path / "contig.tif", spec)
    assert a.shape == (5, 6, 7) and torch.equal(a, b)
    assert torch.allclose((a[2] + 1) / 2 * 65535, torch.from_numpy(bands[2].astype(np.float32)), atol=0.02)


def test_lossless_conversions_only(tmp_path):
    Image.new("L", (4, 3), 100).save(tmp_path / "grey8.png")
    x = load(tmp_path / "grey8.png", GREY16)  # 8-bit grey into a 16-bit grey domain: x 257
    assert torch.allclose((x + 1) / 2 * 65535, torch.full((1, 3, 4), 100.0 * 257), atol=0.01)
    y = load(tmp_path / "grey8.png", ImageSpec(3, 16))  # grey into RGB: the channel repeated
    assert y.shape == (3, 3, 4) and torch.equal(y[0], y[2])


def test_orientation_matches_pil_for_all_eight():
    from PIL import ImageOps

    rgb = np.arange(5 * 3 * 3, dtype=np.uint8).reshape(5, 3, 3)
    for o in range(1, 9):
        image = Image.fromarray(rgb)
        exif = image.getexif()
        exif[0x0112] = o
        buf = io.BytesIO()
        image.save(buf, format="PNG", exif=exif.tobytes())
        with Image.open(io.BytesIO(buf.getvalue())) as im:
            want = np.asarray(ImageOps.exif_transpose(im))
            assert np.array_equal(np.asarray(upright(im)), want), o
        assert np.array_equal(orient(rgb, o), want), o


# --- configuration -------------------------------------------------------------------------------

def test_network_channels_come_from_the_data(tmp_path):
    from cgx.channels import channel_args
    from cgx.plugins import default_registry
    from cgx.train.components import build_networks

    cfg = load_config(tiny(tmp_path, {"data": {"a": {"channels": 1, "depth": 16}, "b": {"channels": 8}}}))
    gens, discs = build_networks(cfg, default_registry()).values()
    assert gens.G(torch.zeros(1, 1, 32, 32)).shape[1] == 8 and gens.F(torch.zeros(1, 8, 32, 32)).shape[1] == 1
    assert discs.D_A(torch.zeros(1, 1, 32, 32)).ndim == 4 and discs.D_B(torch.zeros(1, 8, 32, 32)).ndim == 4
    assert channel_args(load_config(None), "G") == {}  # 8-bit RGB: nothing passed, as always


@pytest.mark.parametrize("changes,key", [
    ({"data": {"a": {"channels": 1}}, "model": {"generator": {"in_channels": 3}}}, "model.generator.in_channels"),
    ({"data": {"b": {"channels": 4}}, "model": {"generator": {"out_channels": 3}}}, "model.generator.out_channels"),
    ({"data": {"a": {"channels": 1}}, "model": {"discriminator": {"in_channels": 3}}}, "model.discriminator.in_channels"),
])
def test_a_network_channel_count_against_the_data_is_a_named_error(tmp_path, changes, key):
    from cgx.plugins import default_registry
    from cgx.train.components import build_networks

    cfg = load_config(tiny(tmp_path, changes))
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")) as e:
        build_networks(cfg, default_registry())
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("override,key", [
    ("data.a.depth=12", "data.a.depth"),
    ("data.a.channels=0", "data.a.channels"),
    ("eval.bands=[0,1]", "eval.bands"),
])
def test_recipe_values_are_checked(tmp_path, override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_config(tiny(tmp_path, {}), [override])
    from cgx.plugins import default_registry
    from cgx.train.components import build_networks

    with pytest.raises(ConfigError, match="method: cyclegan: identity_weight=5.0 needs domains with the same channel"):
        build_networks(load_config(None, ["data.a.channels=1"]), default_registry())


# --- end to end ----------------------------------------------------------------------------------

def test_grey16_to_rgb_through_shards_train_and_translate(grey16_data, tmp_path):
    shards = tmp_path / "shards"
    write_shards(grey16_data, shards, max_count=2, workers=1, progress=False, specs={"A": GREY16, "B": ImageSpec()})
    index = json.loads((shards / "trainA.json").read_text())
    assert index["image"] == {"channels": 1, "depth": 16}
    assert json.loads((shards / "trainB.json").read_text())["image"] == {"channels": 3, "depth": 8}
    data = {"source": "shards", "shards_a": f"{shards}/trainA-{{000000..000001}}.tar",
            "shards_b": f"{shards}/trainB-{{000000..000001}}.tar", "a": {"channels": 1, "depth": 16},
            "shuffle_buffer": 0}
    recipe = tiny(tmp_path, {"data": data})
    cfg = load_config(recipe)
    batch = next(iter(build_source(cfg.data, batch=2).batches(0, 1)))
    assert batch["A"].shape == (2, 1, 32, 32) and batch["B"].shape == (2, 3, 32, 32)
    assert run_main([str(recipe)]) == 0

    out = tmp_path / "translated"
    done = translate_folder(tmp_path / "run", grey16_data / "testB", out, direction="BtoA", progress=False)
    assert len(done.written) == 2
    for f in done.written:
        with Image.open(f) as im:
            assert f.suffix == ".png" and im.mode == "I;16"
            v = np.asarray(im)
        assert v.dtype == np.uint16 and v.max() > 255 and (v % 257 != 0).any()  # not 8 bits stretched
    rgb = translate_folder(tmp_path / "run", grey16_data / "testA", tmp_path / "rgb", progress=False)
    with Image.open(rgb.written[0]) as im:
        assert im.mode == "RGB"


def test_shards_written_for_another_spec_are_a_named_error(grey16_data, tmp_path):
    shards = tmp_path / "shards"
    write_shards(grey16_data / "trainB", shards, prefix="rgb", workers=1, progress=False)  # default: 8-bit RGB
    cfg = DataConfig(source="shards", shards_a=f"{shards}/rgb-000000.tar", shards_b=f"{shards}/rgb-000000.tar",
                     a=GREY16, workers=0, load_size=32, crop_size=32)
    with pytest.raises(DataError, match=r"data\.shards_a: the shards of .*rgb\.json were written for RGB 8-bit .*data\.a is grey 16-bit"):
        build_source(cfg, batch=1)
    index = json.loads((shards / "rgb.json").read_text())
    del index["image"]  # an index written before specs were recorded: 8-bit RGB only
    (shards / "rgb.json").write_text(json.dumps(index))
    with pytest.raises(DataError, match=r"data\.shards_a: the index .*rgb\.json records no image spec .*data\.a is grey 16-bit"):
        build_source(cfg, batch=1)
    build_source(DataConfig(source="shards", shards_a=cfg.shards_a, shards_b=cfg.shards_b, workers=0), batch=1)
    g16 = tmp_path / "g16"
    write_shards(grey16_data / "trainA", g16, prefix="g", workers=1, progress=False, specs={"": GREY16})
    cfg = DataConfig(source="shards", shards_a=f"{g16}/g-000000.tar", shards_b=f"{shards}/rgb-000000.tar",
                     a=ImageSpec(1, 8), workers=0, load_size=32, crop_size=32)
    with pytest.raises(DataError, match=r"written for grey 16-bit images .* data\.a is grey 8-bit") as e:
        build_source(cfg, batch=1)
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("bands", [4, 8])
def test_multiband_tiff_domain_trains_resumes_exactly_and_translates(tmp_path, bands):
    data = generate(tmp_path / "data", n_train=4, n_test=2, size=32, a=ImageSpec(bands, 16))
    assert sorted(p.suffix for p in (data / "trainA").iterdir()) == [".tif"] * 4
    changes = {"data": {"root": str(data), "a": {"channels": bands, "depth": 16}}}
    (tmp_path / "full").mkdir()
    full = tiny(tmp_path / "full", changes)
    assert run_main([str(full)]) == 0
    (tmp_path / "resumed").mkdir()
    resumed = tiny(tmp_path / "resumed", changes)
    shutil.copytree(tmp_path / "full/run/checkpoints/step_00000002", tmp_path / "resumed/run/checkpoints/step_00000002")
    assert run_main([str(resumed)]) == 0
    assert_same_weights(load_weights(tmp_path / "full/run", 4), load_weights(tmp_path / "resumed/run", 4))

    done = translate_folder(tmp_path / "full/run", data / "testB", tmp_path / "out", direction="BtoA", progress=False)
    for f in done.written:
        assert f.suffix == ".tif"
        arr = tifffile.imread(f)
        assert arr.shape == (32, 32, bands) and arr.dtype == np.uint16 and arr.max() > 255
