"""The plugin's own tests (pytest plugins/examples/cgx-example-disc): it registers, builds from its
defaults, and trains as cgx's trainer uses a discriminator. cgx's test suite checks it further when
it is installed (tests/plugins/test_components.py parametrizes over every registered network)."""
import torch

import cgx_example_disc
from cgx.plugins import Registry


def test_registers_and_builds(monkeypatch):
    monkeypatch.setenv("CGX_LOAD_PLUGINS", "")  # only this plugin, whatever else is installed
    registry = Registry()
    registry.add_plugin(cgx_example_disc, source="test")
    assert registry.available("discriminator") == ["example_global"]
    d = registry.create("discriminator", "example_global", width=8, n_down=3)
    x = torch.rand(2, 3, 32, 32, requires_grad=True) * 2 - 1
    scores = d(x)
    assert scores.shape == (2, *d.output_shapes(32, 32)[0])
    scores.square().mean().backward()
    assert all(p.grad is not None for p in d.parameters())
