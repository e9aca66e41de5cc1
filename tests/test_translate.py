"""cgx translate and cgx grid on a trained tiny checkpoint."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from cgx.cli import main as cli_main
from cgx.infer import load_generators, translate_batch
from cgx.train.checkpoint import CheckpointError


@pytest.fixture
def trained(tiny_run):
    """The shared 2-step tiny run (tests/conftest.py); these tests only read it."""
    return tiny_run


def write_images(folder, sizes):
    rng = np.random.default_rng(0)
    for i, (w, h) in enumerate(sizes):
        sub = folder / ("nested" if i % 2 else "")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(sub / f"img{i}.jpg")


def test_translate_folder_any_size_both_directions(trained, tmp_path):
    sizes = [(37, 53), (64, 64), (37, 53), (5, 3), (100, 30)]
    write_images(tmp_path / "in", sizes)
    for direction in ("AtoB", "BtoA"):
        out = tmp_path / direction
        assert cli_main(["translate", str(trained), str(tmp_path / "in"), str(out), "--direction", direction,
                         "--batch-size", "2", "--no-progress"]) == 0
        for i, (w, h) in enumerate(sizes):
            rel = ("nested/" if i % 2 else "") + f"img{i}.png"
            assert Image.open(out / rel).size == (w, h)


def test_translation_matches_the_generator(trained, tmp_path):
    """Padding then cropping gives, on a size the net accepts as is, exactly the net's output."""
    gens = load_generators(trained)
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        assert torch.allclose(translate_batch(gens.G, x), gens.G(x))
        assert translate_batch(gens.F, x[:, :, :30, :31]).shape == (2, 3, 30, 31)
    assert gens.step == 2 and gens.config.model.generator.args["ngf"] == 4


def test_grid_png(trained, demo_data, tmp_path):
    out = tmp_path / "grid.png"
    assert cli_main(["grid", str(trained), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "-o", str(out), "--n", "2"]) == 0
    img = Image.open(out)
    assert img.width > 3 * 32 and img.height > 4 * 32  # 3 columns, 2 + 2 rows


def test_translate_without_checkpoint_is_a_clear_error(tmp_path, capsys):
    (tmp_path / "in").mkdir()
    assert cli_main(["translate", str(tmp_path / "norun"), str(tmp_path / "in"), str(tmp_path / "out")]) == 2
    assert "no checkpoint at" in capsys.readouterr().err
    with pytest.raises(CheckpointError):
        load_generators(tmp_path / "norun")
