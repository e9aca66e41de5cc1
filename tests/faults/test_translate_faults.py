"""Cases 3 and 11: `cgx translate` never overwrites or loses an image, and bad options are one-line errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from faultkit import one_line_error, write_noise as write

from cgx.cli import main as cli_main


def translate(run, src, out, *extra):
    return cli_main(["translate", str(run), str(src), str(out), "--no-progress", *extra])


def test_existing_outputs_are_not_overwritten_without_the_flag(tiny_run, tmp_path, capsys):
    write(tmp_path / "in" / "a.png", 0)
    write(tmp_path / "in" / "b.png", 1)
    (tmp_path / "out").mkdir()
    mine = write(tmp_path / "out" / "a.png", 2)  # the user's own file, in the way
    assert translate(tiny_run, tmp_path / "in", tmp_path / "out") == 2
    one_line_error(capsys, "1 of the 2 output files exist already", "a.png", "--overwrite")
    assert (tmp_path / "out" / "a.png").read_bytes() == mine
    assert not (tmp_path / "out" / "b.png").exists()  # refused before anything was translated
    assert translate(tiny_run, tmp_path / "in", tmp_path / "out", "--overwrite") == 0
    assert (tmp_path / "out" / "a.png").read_bytes() != mine and (tmp_path / "out" / "b.png").is_file()
    assert not list((tmp_path / "out").glob(".*"))  # no temporary files left behind


@pytest.mark.parametrize("where", ["same", "inside"])
def test_output_folder_equal_to_or_inside_the_input_is_refused(tiny_run, tmp_path, capsys, where):
    src = tmp_path / "in"
    original = write(src / "x.png", 0)
    out = src if where == "same" else src / "translated"
    assert translate(tiny_run, src, out, "--overwrite") == 2
    one_line_error(capsys, "input folder", str(src))
    assert (src / "x.png").read_bytes() == original
    assert sorted(p.name for p in src.rglob("*")) == ["x.png"]


def test_inputs_that_differ_only_in_extension_get_one_output_each(tiny_run, tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "x.png", 0)
    write(src / "x.jpg", 1, fmt="JPEG")
    write(src / "y.jpg", 2, fmt="JPEG")
    assert translate(tiny_run, src, tmp_path / "out") == 0
    assert "translated 3 images" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["x_jpg.png", "x_png.png", "y.png"]
    a, b = (np.asarray(Image.open(tmp_path / "out" / n)) for n in ("x_jpg.png", "x_png.png"))
    assert not np.array_equal(a, b)  # two inputs, two different translations


def test_a_name_that_still_collides_is_an_error(tiny_run, tmp_path, capsys):
    src = tmp_path / "in"
    for name in ("x.png", "x.jpg", "x_jpg.bmp"):  # x.jpg -> x_jpg.png, and x_jpg.bmp -> x_jpg.png
        write(src / name, 0, fmt="PNG" if name.endswith("png") else None)
    assert translate(tiny_run, src, tmp_path / "out") == 2
    one_line_error(capsys, "would both be written to x_jpg.png")
    assert not (tmp_path / "out").exists()


def test_unreadable_inputs_are_skipped_named_and_not_counted(tiny_run, tmp_path, capsys):
    src = tmp_path / "in"
    write(src / "good.png", 0)
    (src / "empty.png").write_bytes(b"")
    data = write(src / "cut.jpg", 1, size=(64, 64), fmt="JPEG")
    (src / "cut.jpg").write_bytes(data[: len(data) // 2])
    assert translate(tiny_run, src, tmp_path / "out") == 0
    out = capsys.readouterr()
    assert "translated 1 images" in out.out
    assert "skipped 2 unreadable images" in out.err
    assert f"{src / 'empty.png'}: the file is empty (0 bytes)" in out.err and str(src / "cut.jpg") in out.err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


def test_only_unreadable_inputs_is_an_error(tiny_run, tmp_path, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "empty.png").write_bytes(b"")
    assert translate(tiny_run, tmp_path / "in", tmp_path / "out") == 2
    one_line_error(capsys, "none of the 1 images", "empty.png")


@pytest.mark.parametrize("args,words", [
    (["--batch-size", "0"], ["--batch-size must be at least 1, got 0"]),
    (["--batch-size", "-3"], ["--batch-size must be at least 1"]),
    (["--device", "nonsense"], ["--device 'nonsense' is not a device"]),
    (["--device", "cuda:99"] if torch.cuda.is_available() else ["--device", "cuda"], ["--device cuda"]),
])
def test_bad_options_are_one_line_errors(tiny_run, tmp_path, capsys, args, words):
    write(tmp_path / "in" / "a.png", 0)
    assert translate(tiny_run, tmp_path / "in", tmp_path / "out", *args) == 2
    one_line_error(capsys, *words)
    assert not (tmp_path / "out").exists()


def test_grid_refuses_zero_images_per_direction(tiny_run, demo_data, tmp_path, capsys):
    assert cli_main(["grid", str(tiny_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "-o", str(tmp_path / "g.png"), "--n", "0"]) == 2
    one_line_error(capsys, "--n and --size must be at least 1, got --n 0")
    assert not (tmp_path / "g.png").exists()
