"""No cgx command writes over one of its inputs, or over an existing file it did not create without an
explicit flag; one shared check, cgx.outputs (issue 17, case 7)."""
from __future__ import annotations

import pytest
import yaml
from PIL import Image

from faultkit import one_line_error, write_noise as write

from cgx.cli import main as cli_main
from cgx.outputs import CONFIG_MARK
from cgx.run import main as run_main


def test_translate_refuses_an_output_folder_that_contains_the_input(tiny_run, tmp_path, capsys):
    """Input inside output: with --overwrite, out/sub/x.png (an input) would be replaced."""
    out = tmp_path / "out"
    src = out / "sub"
    original = write(src / "sub" / "x.png", 0)
    write(src / "x.png", 1)
    assert cli_main(["translate", str(tiny_run), str(src), str(out), "--overwrite", "--no-progress"]) == 2
    one_line_error(capsys, "contains", str(src))
    assert (src / "sub" / "x.png").read_bytes() == original
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*.png")) == ["sub/sub/x.png", "sub/x.png"]


def grid(run, a, b, out, *extra):
    return cli_main(["grid", str(run), "--a", str(a), "--b", str(b), "-o", str(out), "--n", "1", *extra])


def test_grid_never_overwrites_an_input_even_with_the_flag(tiny_run, demo_data, capsys):
    a = demo_data / "testA"
    first = sorted(a.iterdir())[0]
    before = first.read_bytes()
    for extra in ((), ("--overwrite",)):
        assert grid(tiny_run, a, demo_data / "testB", first, *extra) == 2
        one_line_error(capsys, str(first), "input")
    assert first.read_bytes() == before


def test_grid_refuses_an_existing_file_without_the_flag(tiny_run, demo_data, tmp_path, capsys):
    out = tmp_path / "mine.png"
    mine = write(out, 3)
    assert grid(tiny_run, demo_data / "testA", demo_data / "testB", out) == 2
    one_line_error(capsys, str(out), "--overwrite")
    assert out.read_bytes() == mine
    assert grid(tiny_run, demo_data / "testA", demo_data / "testB", out, "--overwrite") == 0
    assert out.read_bytes() != mine and Image.open(out).format == "PNG"


def test_grid_to_a_file_that_is_not_an_image_is_one_line(tiny_run, demo_data, tmp_path, capsys):
    assert grid(tiny_run, demo_data / "testA", demo_data / "testB", tmp_path / "x.yaml") == 2
    one_line_error(capsys, "x.yaml", ".png")
    assert not (tmp_path / "x.yaml").exists()


def test_a_fresh_run_does_not_replace_a_users_config_yaml(make_recipe, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    mine = "# my own notes, not a cgx file\nmodel: {}\n"
    (run / "config.yaml").write_text(mine)
    recipe = make_recipe({"train": {"steps": 2, "ckpt_every": 2}})
    assert run_main([str(recipe)]) == 2
    one_line_error(capsys, str(run / "config.yaml"), "train.run_dir")
    assert (run / "config.yaml").read_text() == mine
    # what cgx writes there is its own: marked, and replaced by the next launch
    (run / "config.yaml").unlink()
    assert run_main([str(recipe)]) == 0
    text = (run / "config.yaml").read_text()
    assert text.startswith(CONFIG_MARK) and yaml.safe_load(text)["train"]["steps"] == 2
    assert run_main([str(recipe), "train.steps=4"]) == 0
    assert yaml.safe_load((run / "config.yaml").read_text())["train"]["steps"] == 4
