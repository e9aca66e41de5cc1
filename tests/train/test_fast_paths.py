"""Every fast path computes what the plain path computes: batched generator calls, channels_last
(on CPU too), against float64 where float noise must be told from a wrong result."""
from __future__ import annotations

import copy

import pytest
import torch

from cgx import plugins
from conftest import float64_error

from cgx_plugins.methods.cyclegan import GeneratorPair

GENERATORS = [("resnet", {"ngf": 8, "n_blocks": 2}), ("unet", {"ngf": 8, "num_downs": 5})]


@pytest.mark.parametrize("name, kwargs", GENERATORS)
def test_batched_generator_calls_equal_separate_calls(name, kwargs):
    torch.manual_seed(0)
    G, F = (plugins.create("generator", name, **kwargs) for _ in range(2))
    batched, separate = GeneratorPair(G, F), GeneratorPair(copy.deepcopy(G), copy.deepcopy(F), batch_calls=False)
    assert batched.batch_calls and not separate.batch_calls
    a, b = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    out_b, out_s = batched(a, b), separate(a, b)
    for field in ("fake_b", "rec_a", "fake_a", "rec_b", "idt_b", "idt_a"):
        torch.testing.assert_close(getattr(out_b, field), getattr(out_s, field), rtol=1e-5, atol=1e-6, msg=field)
    for out, pair in ((out_b, batched), (out_s, separate)):
        sum(getattr(out, f).square().mean() for f in ("fake_b", "rec_a", "fake_a", "rec_b", "idt_b", "idt_a")).backward()
    for (k, p), q in zip(batched.named_parameters(), separate.parameters()):
        torch.testing.assert_close(p.grad, q.grad, rtol=1e-4, atol=1e-7, msg=k)


def test_batch_norm_generators_keep_separate_calls():
    """With batch norm a sample's output depends on its batch: batching would change the results."""
    G, F = (plugins.create("generator", "resnet", ngf=4, n_blocks=1, norm="batch") for _ in range(2))
    assert not GeneratorPair(G, F).batch_calls


@pytest.mark.parametrize("kind, name, kwargs", [("generator", "resnet", {"ngf": 8, "n_blocks": 2}),
                                                ("discriminator", "patchgan", {"ndf": 8})])
def test_channels_last_gradients_are_as_exact_as_contiguous_ones(kind, name, kwargs):
    torch.manual_seed(0)
    net = plugins.create(kind, name, **kwargs)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    contiguous, channels_last = float64_error(net, x, False), float64_error(net, x, True)
    assert contiguous < 1e-4
    assert channels_last < max(4 * contiguous, 1e-5), (contiguous, channels_last)
