"""benchmarks/bench_quality.py's recipes: each config (but cyclegan_plus, whose keys other branches add)
with each preset is a recipe cgx accepts, at the preset's size and steps."""
from __future__ import annotations

import sys

import pytest
import yaml
from conftest import REPO

from cgx.config import load_config
from cgx.plugins import default_registry
from cgx.train import components

sys.path.insert(0, str(REPO / "benchmarks"))
from bench_quality import PRESETS, bench_recipe  # noqa: E402


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("config", ["cyclegan", "cut", "fastcut"])
def test_each_config_and_preset_is_a_valid_recipe(tmp_path, config, preset):
    path = tmp_path / f"{config}.yaml"
    path.write_text(yaml.safe_dump(bench_recipe(config, PRESETS[preset], tmp_path / "data")))
    cfg = load_config(path)
    components.check_components(cfg, default_registry())
    assert cfg.method.name == config and cfg.data.crop_size == PRESETS[preset]["size"]
    assert cfg.train.steps == PRESETS[preset]["steps"] and cfg.optim.decay_steps == PRESETS[preset]["steps"] // 2
    assert cfg.data.root == str(tmp_path / "data") and not cfg.data.flip
