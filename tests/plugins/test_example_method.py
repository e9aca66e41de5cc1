"""A method from outside cgx: the example package plugins/examples/cgx-example-method (CycleGAN with
the cycle loss on blurred images) pip-installed into a folder of its own (never this venv), listed by
``cgx plugins`` as a method; its own tests (cgx.testing.check_method: trains 4 steps, resumes exactly,
translates both ways) pass; a value it refuses stops training with one line naming the method."""
from __future__ import annotations

import pytest

from test_example_plugin import REPO, installed, listed, own_tests, train

pytestmark = pytest.mark.multiprocess

EXAMPLE = REPO / "plugins" / "examples" / "cgx-example-method"
DIST = "cgx-example-method"


@pytest.fixture
def installed_method(tmp_path):
    with installed(EXAMPLE, DIST, tmp_path) as env:
        yield env


def test_installed_method_keeps_the_contract(installed_method, make_recipe):
    env = installed_method
    rows = [row for row in listed(env) if row["name"] == "blurcycle"]
    assert rows == [{"kind": "method", "name": "blurcycle",
                     "source": f"{DIST} 0.1.0 (entry point blurcycle = cgx_example_method)"}]
    tests = own_tests(EXAMPLE, env)
    assert tests.returncode == 0 and "2 passed" in tests.stdout, tests.stdout[-3000:] + tests.stderr[-2000:]
    bad = make_recipe({"method": {"name": "blurcycle", "blur": 0}, "train": {"steps": 2}}, name="bad.yaml")
    r = train(bad, env)
    assert r.returncode != 0 and "blur must be >= 1" in r.stderr and "method" in r.stderr
