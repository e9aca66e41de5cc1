"""Hostile recipes and overrides (issue 17, cases 4 and 5): YAML alias bombs and deep nesting give a
short one-line error, and an override that is not plain YAML data is refused, naming it."""
from __future__ import annotations

import time

import pytest

from cgx.cli import main as cli_main
from cgx.config import MAX_DEPTH, load_config
from cgx.errors import ConfigError

BOMB = """\
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def one_line_error(argv, capsys) -> str:
    capsys.readouterr()
    assert cli_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("cgx: error: ") and err.count("\n") == 1 and len(err) < 1000, err[:2000]
    return err


def test_an_alias_bomb_is_refused_quickly_with_a_short_message(tmp_path, capsys):
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(BOMB + "train:\n  steps: *i\n")
    t = time.perf_counter()
    err = one_line_error(["train", str(recipe)], capsys)
    assert time.perf_counter() - t < 10
    assert str(recipe) in err and "expands to more than" in err


def test_a_bomb_in_a_value_prints_a_shortened_value(tmp_path, capsys):
    """Below the size limit, a wrong value is still shown cut short."""
    recipe = tmp_path / "r.yaml"
    lol = ", ".join(["lol"] * 9)
    nine = lambda x: ", ".join([x] * 9)  # noqa: E731
    recipe.write_text(f"train:\n  steps: [&a [{lol}], &b [{nine('*a')}], &c [{nine('*b')}], [{nine('*c')}]]\n")
    err = one_line_error(["train", str(recipe)], capsys)
    assert "train.steps must be" in err and "..." in err


@pytest.mark.parametrize("flow", [True, False])
def test_deep_nesting_is_refused_naming_the_line(tmp_path, capsys, flow):
    recipe = tmp_path / "deep.yaml"
    depth = 5000
    if flow:
        recipe.write_text("train: " + "[" * depth + "]" * depth + "\n")
    else:
        recipe.write_text("".join(f"{'  ' * i}k{i}:\n" for i in range(depth)))
    err = one_line_error(["train", str(recipe)], capsys)
    assert f"nested more than {MAX_DEPTH} levels deep" in err and str(recipe) in err and "line" in err


@pytest.mark.parametrize("value", ["!!python/object/apply:os.system [touch x]", "!!python/name:os.system",
                                   "!custom x"])
def test_an_override_with_a_yaml_tag_is_refused(tmp_path, value):
    with pytest.raises(ConfigError, match="YAML tags .* are not accepted") as info:
        load_config(None, [f"train.run_dir={value}"])
    assert "train.run_dir=" in str(info.value) and "\n" not in str(info.value)


@pytest.mark.parametrize("value", ["{a", "a: b: c", "[1, 2"])
def test_an_override_that_is_not_yaml_is_refused_not_read_as_a_string(value):
    with pytest.raises(ConfigError, match="not valid YAML") as info:
        load_config(None, [f"train.run_dir={value}"])
    msg = str(info.value)
    assert f"override 'train.run_dir={value}'" in msg and "YAML quotes" in msg and "\n" not in msg


def test_quoted_and_plain_overrides_still_work():
    cfg = load_config(None, ["train.run_dir='{a'", "data.shards_a=d/trainA-{000000..000003}.tar",
                             "data.shards_b=pipe:aws s3 cp s3://b/x.tar -", "optim.betas=[0.5, 0.9]"])
    assert cfg.train.run_dir == "{a" and cfg.data.shards_a == "d/trainA-{000000..000003}.tar"
    assert cfg.data.shards_b == "pipe:aws s3 cp s3://b/x.tar -" and cfg.optim.betas == [0.5, 0.9]
