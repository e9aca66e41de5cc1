"""``cgx plugins show NAME`` and ``--plugins FILE`` for ``cgx plugins`` (in this process; a fresh
default registry per test, so a module loaded here is not seen by other tests)."""
from __future__ import annotations

import json

import pytest

import cgx.plugins
from cgx.cli import main

PLUGIN = '''"""Shown: a discriminator for the show test."""
from torch import nn
from typing import Literal

from cgx.plugins import hookimpl


def build_shown(in_channels: int = 3, width: int = 8, mode: Literal["a", "b"] = "a", scale: float = 1.5):
    """A one-conv discriminator. More words that the summary leaves out.

    width: its channels."""
    net = nn.Conv2d(in_channels, 1, 3)
    net.output_shapes = lambda h, w: [(1, h - 2, w - 2)]
    return net


@hookimpl
def cgx_register_discriminators(register):
    register("shown_disc", build_shown)
'''


@pytest.fixture(autouse=True)
def fresh_registry(monkeypatch):
    monkeypatch.setattr(cgx.plugins, "_default", None)


@pytest.fixture
def plugin_file(tmp_path):
    path = tmp_path / "shown_plugin.py"
    path.write_text(PLUGIN)
    return path


def test_show_a_builtin(capsys):
    assert main(["plugins", "show", "patchgan"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("discriminator patchgan: PatchGAN")
    assert "source:     cgx 0.1.0 (entry point patchgan = cgx_plugins.discriminators.patchgan)" in out
    assert "recipe key: model.discriminator" in out
    assert "    ndf: int = 64\n" in out and "    norm: one of 'instance', 'batch', 'none' = 'instance'\n" in out


def test_show_a_module_given_with_plugins(capsys, plugin_file):
    assert main(["plugins", "show", "shown_disc", "--plugins", str(plugin_file)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "discriminator shown_disc: A one-conv discriminator."
    assert f"source:     {plugin_file.resolve()}" in out
    for line in ("in_channels: int = 3", "width: int = 8", "mode: one of 'a', 'b' = 'a'", "scale: float = 1.5"):
        assert f"    {line}\n" in out
    assert main(["plugins", "show", "shown_disc", "--json", "--plugins", str(plugin_file)]) == 0
    [record] = json.loads(capsys.readouterr().out)
    assert record["kind"] == "discriminator" and record["recipe_key"] == "model.discriminator"
    assert record["arguments"][1] == {"name": "width", "type": "int", "default": 8, "required": False}


def test_list_with_plugins(capsys, plugin_file):
    assert main(["plugins", "--json", "--plugins", str(plugin_file)]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {"kind": "discriminator", "name": "shown_disc", "source": str(plugin_file.resolve())} in rows
    assert "patchgan" in {r["name"] for r in rows}


def test_show_an_unknown_name_suggests_close_ones(capsys):
    assert main(["plugins", "show", "patchgn"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "cgx: error: no plugin named 'patchgn' is registered; did you mean patchgan?"


def test_show_a_name_of_another_kind(capsys):
    assert main(["plugins", "show", "l1", "--kind", "adversarial_loss"]) == 2
    assert "no adversarial_loss plugin named 'l1'" in capsys.readouterr().err


def test_plugins_with_a_missing_file_is_one_line(capsys, tmp_path):
    assert main(["plugins", "--plugins", str(tmp_path / "nope.py")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.py" in err and "not found" in err
