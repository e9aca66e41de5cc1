"""cgx.train.recipe_changes on a checkpoint's recipe that may come from someone else's run folder."""
from __future__ import annotations

from cgx.train.recipe_changes import MAX_NODES, describe_changes, recipe_changes


def test_changed_keys_old_and_new():
    saved = {"data": {"crop_size": 32, "root": "d"}, "train": {"steps": 3}}
    now = {"data": {"crop_size": 24, "root": "d"}, "train": {"steps": 3, "ema": 0.999}}
    assert recipe_changes(saved, now) == ["data.crop_size 32 -> 24", "train.ema unset -> 0.999"]
    assert describe_changes([], "step_1") is None


def test_a_shared_section_repeated_2_to_the_20_times_is_not_walked():
    """A pickle can hold one dict referenced twice per level: 20 levels are a few hundred bytes on disk
    and a million leaves when walked."""
    node: dict = {"x": 1}
    for _ in range(20):
        node = {"a": node, "b": node}
    changes = recipe_changes({"data": node}, {"data": {}})
    assert changes == [f"(not compared: the checkpoint's recipe has over {MAX_NODES:,} entries)"]


def test_long_and_hostile_values_are_cut_short_and_escaped():
    saved = {"data": {"root": "\x1b[2J" + "x" * 5000, "bands": list(range(10_000))}}
    line = describe_changes(recipe_changes(saved, {"data": {"root": "r", "bands": [0]}}), "step_1")
    assert "\x1b" not in line and "\\x1b" in line
    assert len(line) < 1000
