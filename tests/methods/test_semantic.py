"""The semantic consistency term and the segmenter's phase (plugins/methods/semantic.py) against a plain
statement of them, on a tiny known batch."""
from __future__ import annotations

import contextlib
import math

import pytest
import torch
from torch import nn

from cgx.distributed.ddp import DDPTrainable
from cgx_plugins.methods.semantic import (SegmenterGroup, SemanticConsistency, SemanticSpec, cross_entropy,
                                          load_segmenter_weights, parse_semantic)

IGNORE = 255


def trainable(module: nn.Module, lr: float = 0.1) -> DDPTrainable:
    return DDPTrainable(module, torch.optim.SGD(module.parameters(), lr=lr), False, torch.device("cpu"), None)


class PixelLinear(nn.Module):
    """logits[n, k, y, x] = sum_c W[k, c] * image[n, c, y, x] + b[k]: a segmenter a test can state by hand."""

    def __init__(self, W: torch.Tensor, b: torch.Tensor) -> None:
        super().__init__()
        self.classes = W.shape[0]
        self.W, self.b = nn.Parameter(W.clone()), nn.Parameter(b.clone())

    def forward(self, x):
        return torch.einsum("kc,nchw->nkhw", self.W, x) + self.b.view(1, -1, 1, 1)


def plain_ce(W, b, images, labels, ignore) -> float:
    """Mean over the labelled pixels of -log softmax(W x + b)[label], in plain Python."""
    total, count = 0.0, 0
    N, C, H, Wd = images.shape
    for n in range(N):
        for y in range(H):
            for x in range(Wd):
                label = int(labels[n, y, x])
                if label == ignore:
                    continue
                z = [sum(float(W[k, c]) * float(images[n, c, y, x]) for c in range(C)) + float(b[k])
                     for k in range(W.shape[0])]
                total += math.log(sum(math.exp(v) for v in z)) - z[label]
                count += 1
    return total / count if count else 0.0


@pytest.fixture
def known():
    g = torch.Generator().manual_seed(7)
    W, b = torch.randn(3, 3, generator=g), torch.randn(3, generator=g)
    fake_b = (torch.rand(2, 3, 2, 3, generator=g) * 2 - 1).requires_grad_(True)
    fake_a = (torch.rand(2, 3, 2, 3, generator=g) * 2 - 1).requires_grad_(True)
    labels_a = torch.tensor([[[0, 1, 2], [IGNORE, 1, 0]], [[2, 2, IGNORE], [0, 0, 1]]])
    labels_b = torch.tensor([[[1, 1, 1], [0, IGNORE, 2]], [[IGNORE, IGNORE, IGNORE], [2, 1, 0]]])
    return W, b, fake_b, fake_a, labels_a, labels_b


def test_generator_terms_equal_a_plain_statement(known):
    W, b, fake_b, fake_a, labels_a, labels_b = known
    seg = trainable(SegmenterGroup(PixelLinear(W, b)))
    sem = SemanticConsistency(SemanticSpec(weight=0.7), seg, IGNORE, IGNORE, contextlib.nullcontext)
    terms = sem.generator_terms(fake_b, labels_a, fake_a, labels_b)
    assert set(terms) == {"G/semantic_AtoB", "G/semantic_BtoA"}
    assert terms["G/semantic_AtoB"].item() == pytest.approx(0.7 * plain_ce(W, b, fake_b.detach(), labels_a, IGNORE), rel=1e-5)
    assert terms["G/semantic_BtoA"].item() == pytest.approx(0.7 * plain_ce(W, b, fake_a.detach(), labels_b, IGNORE), rel=1e-5)
    sum(terms.values()).backward()
    assert fake_b.grad.abs().sum() > 0 and fake_a.grad.abs().sum() > 0
    assert fake_b.grad[0, :, 1, 0].abs().sum() == 0  # an ignored pixel gives no gradient
    S = seg.module.S
    assert S.W.grad is None and S.b.grad is None and S.W.requires_grad  # frozen for the term, then unfrozen


def test_no_b_labels_no_f_term(known):
    W, b, fake_b, fake_a, labels_a, _ = known
    sem = SemanticConsistency(SemanticSpec(), trainable(SegmenterGroup(PixelLinear(W, b))), IGNORE, None,
                              contextlib.nullcontext)
    assert set(sem.generator_terms(fake_b, labels_a, fake_a, None)) == {"G/semantic_AtoB"}


def test_every_pixel_ignored_gives_zero_not_nan():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = cross_entropy(logits, torch.full((1, 2, 2), IGNORE), IGNORE)
    assert loss.item() == 0.0
    loss.backward()
    assert torch.equal(logits.grad, torch.zeros_like(logits))


def test_segmenter_phase_is_a_plain_sgd_step_on_real_images(known):
    W, b, real_a, real_b, labels_a, labels_b = known
    real_a, real_b = real_a.detach(), real_b.detach()
    seg = trainable(SegmenterGroup(PixelLinear(W, b)), lr=0.1)
    sem = SemanticConsistency(SemanticSpec(pretrain_steps=1), seg, IGNORE, IGNORE, contextlib.nullcontext)
    assert sem.pretraining
    losses = sem.segmenter_phase(real_a, labels_a, real_b, labels_b)
    assert losses["S/A"].item() == pytest.approx(plain_ce(W, b, real_a, labels_a, IGNORE), rel=1e-5)
    assert losses["S/B"].item() == pytest.approx(plain_ce(W, b, real_b, labels_b, IGNORE), rel=1e-5)
    # the same update stated plainly: W - lr * d(CE_A + CE_B)/dW
    Wr, br = W.clone().requires_grad_(True), b.clone().requires_grad_(True)
    ref = PixelLinear(W, b)
    ref.W, ref.b = nn.Parameter(Wr.detach().clone()), nn.Parameter(br.detach().clone())
    total = (nn.functional.cross_entropy(ref(real_a), labels_a, ignore_index=IGNORE)
             + nn.functional.cross_entropy(ref(real_b), labels_b, ignore_index=IGNORE))
    total.backward()
    S = seg.module.S
    torch.testing.assert_close(S.W.detach(), ref.W.detach() - 0.1 * ref.W.grad)
    torch.testing.assert_close(S.b.detach(), ref.b.detach() - 0.1 * ref.b.grad)
    assert not sem.pretraining and sem.state_dict() == {"steps": 1}
    other = SemanticConsistency(SemanticSpec(pretrain_steps=3), seg, IGNORE, IGNORE, contextlib.nullcontext)
    other.load_state_dict(sem.state_dict())
    assert other.steps == 1 and other.pretraining


def test_batch_norm_segmenter_judges_in_eval_mode(known):
    _, _, fake_b, _, labels_a, _ = known
    net = nn.Sequential(nn.Conv2d(3, 3, 1), nn.BatchNorm2d(3))
    net.classes = 3
    seg = trainable(SegmenterGroup(net))
    before = net[1].running_mean.clone()
    SemanticConsistency(SemanticSpec(), seg, IGNORE, None, contextlib.nullcontext).generator_terms(fake_b, labels_a)
    assert torch.equal(net[1].running_mean, before) and net.training


@pytest.mark.parametrize("value, message", [
    ({"weight": 0}, "semantic.weight must be a number > 0"),
    ({"weight": "x"}, "semantic.weight must be a number > 0"),
    ({"wieght": 1}, "semantic.wieght is not a key of semantic; keys: weight, network, pretrain_steps, init_from"),
    ({"network": 3}, "semantic.network must be a segmenter's name"),
    ({"network": {"width": 3}}, "semantic.network must be a segmenter's name"),
    ({"pretrain_steps": -1}, "semantic.pretrain_steps must be an integer >= 0"),
    ({"pretrain_steps": 1.5}, "semantic.pretrain_steps must be an integer >= 0"),
    ({"init_from": 5}, "semantic.init_from must be a path or null"),
])
def test_bad_semantic_sections_are_named(value, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_semantic(value)


def test_semantic_section_defaults():
    assert parse_semantic(None) is None
    spec = parse_semantic({"network": "timm_fpn", "weight": "2e-1"})
    assert spec == SemanticSpec(weight=0.2, network={"name": "timm_fpn"}, pretrain_steps=0, init_from=None)


def test_init_from_loads_weights_only_and_names_misfits(tmp_path, known):
    from cgx.errors import CheckpointError

    W, b, *_ = known
    good = tmp_path / "seg.pt"
    torch.save(PixelLinear(W * 2, b).state_dict(), good)
    S = PixelLinear(W, b)
    load_segmenter_weights(S, str(good))
    assert torch.equal(S.W.detach(), W * 2)
    wrong = tmp_path / "wrong.pt"
    torch.save({"W": torch.zeros(4, 3), "b": torch.zeros(4)}, wrong)
    with pytest.raises(CheckpointError, match="does not fit method.semantic.network.*'W'"):
        load_segmenter_weights(S, str(wrong))
    code = tmp_path / "code.pt"
    torch.save({"W": W, "b": b, "extra": SemanticSpec()}, code)
    with pytest.raises(CheckpointError, match="refused"):
        load_segmenter_weights(S, str(code))
    with pytest.raises(CheckpointError, match="not found"):
        load_segmenter_weights(S, str(tmp_path / "missing.pt"))
