"""The plugin's own tests (pytest plugins/examples/cgx-example-disc, after installing it or with its
folder on PYTHONPATH): it registers and builds from its defaults, and keeps cgx's contract for a
discriminator, checked by the same public checks cgx runs on its built-ins (cgx.testing)."""
import functools

import cgx.plugins
import cgx_example_disc
from cgx.plugins import Registry
from cgx.testing import check_adversarial_loss, check_discriminator

SMALL = functools.partial(cgx_example_disc.build_example_global, width=8, n_down=3)


def test_registers_and_builds(monkeypatch):
    monkeypatch.setenv("CGX_LOAD_PLUGINS", "")  # only this plugin, whatever else is installed
    registry = Registry()
    registry.add_plugin(cgx_example_disc, source="test")
    assert registry.available("discriminator") == ["example_global"]
    assert registry.create("discriminator", "example_global").output_shapes(64, 64) == [(1, 1, 1)]


def test_keeps_the_discriminator_contract():
    check_discriminator(SMALL)


def test_trains_with_every_adversarial_loss():
    for loss in cgx.plugins.available("adversarial_loss"):  # the gradient penalty's extra pass included
        check_adversarial_loss(lambda: cgx.plugins.create("adversarial_loss", loss), discriminator=SMALL)
