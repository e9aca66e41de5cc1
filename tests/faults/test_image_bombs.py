"""Case 6 of issue 27: memory from small files. A tiled TIFF of empty tiles declaring 20480² x 8 bands,
a grey 50176² TIFF read for a 4-channel domain, a 16-bit RGB PNG of 13000² (pypng), an 8-bit one for
the default domain: each is refused in one line from its header (``data.a/b.max_pixels``, the channel
count) before a pixel is decoded. A sparse 200 GB ``train.pt`` whose manifest declares that size is
refused from its ends instead of being hashed for minutes. The files are built without writing what
they declare, and read in a child process with 1 GiB of address space beyond what torch maps, so a
regression fails the test (MemoryError) instead of taking the machine's memory."""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from capped import TORCH_ADDRESS_SPACE, run_python_capped
from faultkit import png_of_zeros, tiled_tiff_of_nothing

from cgx.config import ImageSpec
from cgx.data.decode import load
from cgx.errors import DataError
from cgx.train.manifest import problem, write_manifest

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("png")

LIMIT = 89_478_485

READ_EACH = """
import json
from cgx.config import ImageSpec
from cgx.data.decode import as_tensor, load
from cgx.errors import CgxError
for path, channels, depth, max_pixels in json.loads(sys.argv[1]):
    try:
        x = as_tensor(load(path, ImageSpec(channels, depth, max_pixels)))
        print("read", tuple(x.shape), flush=True)
    except CgxError as e:
        print("refused", str(e).replace(chr(10), " "), flush=True)
    except BaseException as e:
        print("failed", type(e).__name__, str(e)[:200].replace(chr(10), " "), flush=True)
"""

CASES = {
    # name: (file, spec (channels, depth, max_pixels), what the line must say)
    "tiled_tiff_8_bands": ("bands.tif", (8, 8, LIMIT),
                           f"declares 20480x20480 pixels x 8 channels, more than the {LIMIT:,} of data.a/b.max_pixels"),
    "grey_tiff_for_4_channels": ("grey.tif", (4, 8, 3_000_000_000),
                                 "is grey 8-bit (50176x50176), its domain is 4-channel 8-bit: accepted: 4-channel"),
    "grey_tiff_over_the_limit": ("grey.tif", (1, 8, LIMIT), "declares 50176x50176 pixels, more than the"),
    "png16_rgb_pypng": ("rgb16.png", (3, 16, LIMIT), "declares 13000x13000 pixels, more than the"),
    "png8_grey_default_spec": ("grey8.png", (3, 8, LIMIT), "declares 13000x13000 pixels, more than the"),
    "small_multiband_tiff_reads": ("small.tif", (8, 16, LIMIT), None),
}


@pytest.fixture(scope="module")
def read_in_child(tmp_path_factory) -> dict[str, str]:
    """Each case's line, all read in one child process under the memory cap."""
    d = tmp_path_factory.mktemp("image_bombs")
    tiled_tiff_of_nothing(d / "bands.tif", (8, 20480, 20480))
    tiled_tiff_of_nothing(d / "grey.tif", (50176, 50176))
    png_of_zeros(d / "rgb16.png", 13000, 13000, channels=3, depth=16)
    png_of_zeros(d / "grey8.png", 13000, 13000)
    tifffile.imwrite(d / "small.tif", np.zeros((64, 64, 8), np.uint16), photometric="minisblack",
                     planarconfig="contig")
    for f in d.iterdir():
        assert f.stat().st_size < 2 << 20, f  # a few hundred KB each, whatever they declare
    cases = [(str(d / f), *spec) for f, spec, _ in CASES.values()]
    result = run_python_capped(READ_EACH, [json.dumps(cases)], memory=TORCH_ADDRESS_SPACE + (1 << 30), timeout=300)
    lines = result.out.strip().splitlines()
    assert result.rc == 0 and len(lines) == len(CASES), (result.rc, result.out, result.err[-3000:])
    return dict(zip(CASES, lines))


@pytest.mark.multiprocess
@pytest.mark.parametrize("case", CASES)
def test_declared_size_and_channels_are_checked_before_decoding(read_in_child, case):
    line, (_, _, expect) = read_in_child[case], CASES[case]
    if expect is None:
        assert line == "read (8, 64, 64)", line
    else:
        assert line.startswith("refused image ") and expect in line, line


def test_max_pixels_is_the_recipe_key_that_raises_the_limit(tmp_path):
    png_of_zeros(tmp_path / "wide.png", 3000, 1000)
    with pytest.raises(DataError, match=r"wide.png declares 3000x1000 pixels, more than the 2,000,000 of "
                                        r"data.a/b.max_pixels; not decoded \(raise data.a.max_pixels"):
        load(tmp_path / "wide.png", ImageSpec(max_pixels=2_000_000))
    assert load(tmp_path / "wide.png", ImageSpec(max_pixels=3_000_000)).size == (3000, 1000)
    assert load(tmp_path / "wide.png", ImageSpec(1, 16, max_pixels=3_000_000)).shape == (1, 1000, 3000)


def test_max_pixels_below_one_is_a_recipe_error(tmp_path):
    from cgx.config import load_config
    from cgx.errors import ConfigError

    recipe = tmp_path / "r.yaml"
    recipe.write_text("data:\n  b:\n    max_pixels: 0\n")
    with pytest.raises(ConfigError, match="data.b.max_pixels must be positive, got 0"):
        load_config(recipe)


# --- a checkpoint's files are checked from their ends before they are hashed -------------------------------

RESOLVE = """
from cgx.errors import CgxError
from cgx.train.checkpoint import resolve
try:
    resolve(sys.argv[1])
    print("trusted")
except CgxError as e:
    print("refused", e)
"""


def _checkpoint(folder: Path) -> Path:
    folder.mkdir(parents=True)
    torch.save({"format": 1, "w": torch.zeros(64)}, folder / "train.pt")
    torch.save({"rng": torch.zeros(8)}, folder / "rank_00000.pt")
    write_manifest(folder)
    return folder


def _declare(folder: Path, name: str) -> None:
    """The manifest now declares ``name`` as it is (size and all): a handed-over folder's own record."""
    m = json.loads((folder / "MANIFEST.json").read_text())
    m["files"][name]["size"] = (folder / name).stat().st_size
    (folder / "MANIFEST.json").write_text(json.dumps(m))


@pytest.mark.multiprocess
def test_a_sparse_200_gb_checkpoint_is_refused_without_reading_it(tmp_path):
    ckpt = _checkpoint(tmp_path / "step_00000002")
    assert problem(ckpt) is None
    os.truncate(ckpt / "train.pt", 200 << 30)  # holes: nothing is written
    _declare(ckpt, "train.pt")
    result = run_python_capped(RESOLVE, [str(ckpt)], memory=TORCH_ADDRESS_SPACE + (1 << 30), timeout=60)
    assert result.rc == 0 and result.out.startswith("refused checkpoint"), (result.out, result.err[-2000:])
    assert "train.pt is not a PyTorch file" in result.out and "214,748,364,800 bytes" in result.out
    assert (ckpt / "train.pt").stat().st_blocks * 512 < 1 << 20


def test_a_small_archive_behind_a_gigabyte_of_holes_is_refused(tmp_path):
    ckpt = _checkpoint(tmp_path / "step_00000002")
    data = (ckpt / "rank_00000.pt").read_bytes()
    with open(ckpt / "rank_00000.pt", "wb") as f:  # a valid zip at the end of 1 GiB of holes (zip allows that)
        f.truncate(1 << 30)
        f.seek(1 << 30)
        f.write(data)
    _declare(ckpt, "rank_00000.pt")
    why = problem(ckpt)
    assert why is not None and why.startswith("rank_00000.pt holds 1,073,74") and why.endswith(
        f"bytes its zip records do not account for (of {(1 << 30) + len(data):,}): not a file torch wrote"), why
    shutil.rmtree(ckpt)


def test_shards_skip_an_image_over_max_pixels_and_take_the_option(tmp_path, capsys):
    from cgx.cli import main as cli_main
    from faultkit import write_noise

    write_noise(tmp_path / "src" / "small.png", 0, size=(20, 16))
    png_of_zeros(tmp_path / "src" / "wide.png", 3000, 1000)
    assert cli_main(["shards", str(tmp_path / "src"), str(tmp_path / "a"), "--no-progress",
                     "--max-pixels", "1000000"]) == 0
    out = capsys.readouterr().out
    assert "1 images in 1 shards" in out and "wide.png declares 3000x1000 pixels, more than the 1,000,000" in out
    assert "cgx shards --max-pixels" in out
    assert cli_main(["shards", str(tmp_path / "src"), str(tmp_path / "b"), "--no-progress"]) == 0
    assert "2 images in 1 shards" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["shards", str(tmp_path / "src"), str(tmp_path / "c"), "--max-pixels", "0"])
    assert "--max-pixels: a whole number of at least 1, got '0'" in capsys.readouterr().err
