"""`cgx eval`: one process and a real 2-rank torchrun give the same scores on an odd number of
images; the JSON record; test images from shards; every rank's share."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from conftest import REPO
from eval_fixtures import tiny_run, use_weights, weights  # noqa: F401 -- fixtures

from cgx.cli import main as cli_main
from cgx.distributed import WorldInfo
from cgx.eval.image_set import ImageSet


@pytest.fixture(scope="module")
def odd_data(tmp_path_factory):
    """3 test images per domain (32 px): an odd count for 2 ranks."""
    from cgx.data.demo import generate

    return generate(tmp_path_factory.mktemp("odd") / "data", n_train=1, n_test=3, size=32, seed=3)


@pytest.mark.parametrize("n", [0, 1, 3, 7, 8])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_shares_cover_every_image_once(n, world):
    shares = [WorldInfo(r, r, world).share(n) for r in range(world)]
    assert [i for s in shares for i in s] == list(range(n))
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.multiprocess
def test_two_ranks_give_the_scores_of_one_process(tiny_run, odd_data, use_weights, tmp_path, capsys):
    args = ["eval", str(tiny_run), "--a", str(odd_data / "testA"), "--b", str(odd_data / "testB"),
            "--direction", "AtoB", "--no-progress"]
    assert cli_main(args) == 0
    out = capsys.readouterr().out
    assert "AtoB" in out and "BtoA" not in out.split("\n")[-2]
    one = json.loads((tiny_run / "eval" / "step_00000002.json").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "cgx.cli", *args, "--output", str(tmp_path / "two.json")],
                          capture_output=True, text=True, timeout=300, env=env, cwd=REPO)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("cgx: eval ") == 1  # rank 0 reports
    two = json.loads((tmp_path / "two.json").read_text())
    assert two["world_size"] == 2 and one["world_size"] == 1
    a, b = one["scores"]["AtoB"], two["scores"]["AtoB"]
    assert a["n_translated"] == b["n_translated"] == 3 and a["n_real"] == b["n_real"] == 3
    for key in ("FID", "KID_mean", "cycle_L1"):
        assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-9), key
    assert a["KID_std"] is None and b["KID_std"] is None  # 3 images: every subset holds them all
    # the page of two ranks shows rank 0's share of the 3 images, as that rank scored them
    shown = len(WorldInfo(0, 0, 2).share(3))
    assert sorted(f.name for f in (tmp_path / "two" / "AtoB").iterdir()) == [
        f"00{i}_{c}.png" for i in range(shown) for c in ("input", "reconstructed", "translated")]
    for f in (tmp_path / "two" / "AtoB").iterdir():  # the same images (a batch of another size: float noise)
        x, y = (np.asarray(Image.open(g), dtype=np.int16) for g in (f, tiny_run / "eval/step_00000002/AtoB" / f.name))
        assert np.abs(x - y).max() <= 1, f.name
    assert a["FID"] > 0 and a["cycle_L1"] > 0
    # the record: what was scored, with what, how
    assert one["step"] == 2 and one["images"]["A"] == {"source": str(odd_data / "testA"), "count": 3, "channels": 3, "depth": 8, "scored_as": "RGB"}
    assert one["inception"]["sha256"] == use_weights.sha256 and "no antialias" in one["resize"]
    assert one["command"].startswith("cgx eval ") and one["kid"]["subset_size"] == {"AtoB": 3}


def test_shards_give_the_images_of_the_folder(demo_data, demo_shards):
    folder = ImageSet(demo_data / "testA", "--a")
    shards = ImageSet(str(demo_shards / "testA-000000.tar"), "--a")
    assert len(folder) == len(shards) == 2
    assert all(torch.equal(x, y) for x, y in zip(folder.load(range(2)), shards.load(range(2))))
    assert torch.equal(shards.load(range(1, 2))[0], folder.load(range(1, 2))[0])
    assert len(ImageSet(demo_data / "testA", "--a", max_images=1)) == 1


def test_too_few_images_or_no_images_is_a_one_line_error(tiny_run, demo_data, use_weights, tmp_path, capsys):
    base = ["eval", str(tiny_run), "--b", str(demo_data / "testB"), "--no-progress"]
    assert cli_main([*base, "--a", str(demo_data / "testA"), "--max-images", "1"]) == 2
    assert capsys.readouterr().err == f"cgx: error: --a: FID/KID need at least 2 images, {demo_data / 'testA'} gives 1\n"
    assert cli_main([*base, "--a", str(tmp_path / "nothing")]) == 2
    assert "is neither a folder of images nor shard URLs" in capsys.readouterr().err


def test_output_is_replaced_only_with_overwrite_page_and_all(tiny_run, demo_data, use_weights, tmp_path, capsys):
    out = tmp_path / "scores.json"
    base = ["eval", str(tiny_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"), "--no-progress",
            "-o", str(out)]
    assert cli_main(base) == 0
    first = json.loads(out.read_text())
    assert (tmp_path / "scores" / "index.html").is_file()
    capsys.readouterr()
    assert cli_main(base) == 2  # cgx's own output, but the user asked for this file: --overwrite says so
    assert "exists already" in capsys.readouterr().err and json.loads(out.read_text()) == first
    (tmp_path / "scores" / "index.html").write_text("page to replace")
    assert cli_main([*base, "--overwrite"]) == 0
    assert json.loads(out.read_text())["page"] == "scores/index.html"
    assert "page to replace" not in (tmp_path / "scores" / "index.html").read_text()
