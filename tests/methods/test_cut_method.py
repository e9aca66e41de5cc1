"""The cut/fastcut records: a generator without encoder features, NCE layers outside the encoder and
unequal channels with the identity term are one-line recipe errors naming method: cut."""
from __future__ import annotations

import pytest
import yaml

from cgx.config import load_config
from cgx.errors import ConfigError
from cgx.plugins import Registry
from cgx.train.components import build_networks


@pytest.mark.parametrize("changes, says", [
    ({"model": {"generator": {"name": "unet", "ngf": 4, "num_downs": 5}}}, "exposes encoder features"),
    ({"method": {"nce_layers": [0, 4, 40]}}, "nce_layers=[0, 4, 40]: encoder feature layers must be module indices 0..10"),
])
def test_refused_with_a_named_one_line_error(make_recipe, changes, says):
    recipe = make_recipe({"method": {"name": "cut", **changes.get("method", {})}})
    if "model" in changes:  # replace the generator section whole (make_recipe merges)
        raw = yaml.safe_load(recipe.read_text())
        raw["model"]["generator"] = changes["model"]["generator"]
        recipe.write_text(yaml.safe_dump(raw))
    with pytest.raises(ConfigError) as e:
        build_networks(load_config(recipe), Registry())
    msg = str(e.value)
    assert "method: cut:" in msg and says in msg and "\n" not in msg


def test_heads_are_in_the_generator_group(make_recipe):
    cfg = load_config(make_recipe({"method": {"name": "fastcut", "nce_layers": [0, 4, 8], "head_units": 16}}))
    gens, discs = build_networks(cfg, Registry()).values()
    names = [n for n, _ in gens.named_parameters()]
    assert any(n.startswith("heads.mlps.2.") for n in names) and any(n.startswith("G.") for n in names)
    assert [n for n, _ in discs.named_parameters()][0].startswith("D.")
