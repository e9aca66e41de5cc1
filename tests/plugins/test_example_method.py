"""A method from outside cgx: the example package plugins/examples/cgx-example-method (CycleGAN with
the cycle loss on blurred images) pip-installed into this venv, listed by ``cgx plugins`` as a method,
trained from a recipe in a fresh process, translated both ways; then uninstalled."""
from __future__ import annotations

import pytest
import yaml

from test_example_plugin import REPO, assert_trained, cgx, installed, listed, train

pytestmark = pytest.mark.multiprocess

EXAMPLE = REPO / "plugins" / "examples" / "cgx-example-method"
DIST = "cgx-example-method"


@pytest.fixture
def installed_method(tmp_path):
    with installed(EXAMPLE, DIST, tmp_path):
        yield


def test_installed_method_trains_from_a_recipe(installed_method, make_recipe, demo_data, tmp_path):
    rows = [row for row in listed() if row["name"] == "blurcycle"]
    assert rows == [{"kind": "method", "name": "blurcycle",
                     "source": f"{DIST} 0.1.0 (entry point blurcycle = cgx_example_method)"}]
    recipe = make_recipe({"method": {"name": "blurcycle", "cycle_weight": 10.0, "blur": 3},
                          "train": {"steps": 2, "ckpt_every": 100}})
    assert_trained(train(recipe), recipe)
    run_dir = yaml.safe_load(recipe.read_text())["train"]["run_dir"]
    for direction, folder in (("AtoB", "testA"), ("BtoA", "testB")):
        r = cgx("translate", run_dir, str(demo_data / folder), str(tmp_path / direction), "--direction", direction,
                "--no-progress")
        assert r.returncode == 0, r.stderr
        assert len(list((tmp_path / direction).glob("*.png"))) == 2
    bad = make_recipe({"method": {"name": "blurcycle", "blur": 0}, "train": {"steps": 2}}, name="bad.yaml")
    r = train(bad)
    assert r.returncode != 0 and "blur must be >= 1" in r.stderr and "method" in r.stderr
