"""The public helpers for method authors (cgx.plugins.helpers, re-exported from cgx.plugins)."""
from __future__ import annotations

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.plugins import fp32, frozen, score_real_and_fake


def test_the_types_and_helpers_import_from_cgx_plugins():
    for name in ("Method", "Components", "Trainable", "StepResult", "MethodStep", "FeatureGenerator", "EVENTS",
                 "frozen", "score_real_and_fake", "fp32", "split", "mean_over", "set_requires_grad"):
        assert name in cgx.plugins.__all__ and getattr(cgx.plugins, name) is not None


class Wrapped:
    """A Trainable as a step gets it: the bare group in ``.module``."""

    def __init__(self, module: nn.Module) -> None:
        self.module = module


def test_frozen_freezes_for_the_block_and_restores_exactly_what_it_changed():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[0].weight.requires_grad_(False)  # frozen by the plugin itself
    other = nn.Linear(2, 2)
    with frozen(Wrapped(net), other):
        assert not any(p.requires_grad for p in [*net.parameters(), *other.parameters()])
    assert [p.requires_grad for p in net.parameters()] == [False, True, True, True]
    assert all(p.requires_grad for p in other.parameters())


def test_frozen_restores_when_the_block_raises():
    net = nn.Linear(2, 2)
    with pytest.raises(RuntimeError):
        with frozen(net):
            raise RuntimeError("a step that fails")
    assert all(p.requires_grad for p in net.parameters())
    with pytest.raises(TypeError, match="nn.Module or a Trainable"):
        with frozen("not a group"):
            pass


def test_score_real_and_fake_is_one_call_split_back():
    calls = []

    def two_heads(x):
        calls.append(x.shape[0])
        return [x.mean((1, 2, 3)), x[:, :1]]

    real, fake = torch.zeros(2, 3, 4, 4), torch.ones(3, 3, 4, 4)
    real_scores, fake_scores = score_real_and_fake(two_heads, real, fake)
    assert calls == [5]
    assert [s.shape[0] for s in real_scores] == [2, 2] and [s.shape[0] for s in fake_scores] == [3, 3]
    assert real_scores[0].eq(0).all() and fake_scores[0].eq(1).all()
    with pytest.raises(ValueError, match="differ beyond the batch"):
        score_real_and_fake(two_heads, real, torch.ones(2, 3, 8, 8))


def test_fp32_of_a_tensor_and_of_a_list():
    x = torch.ones(2, dtype=torch.bfloat16)
    assert fp32(x).dtype == torch.float32
    assert [t.dtype for t in fp32([x, x.half()])] == [torch.float32, torch.float32]
