"""Discriminator augmentation: DiffAugment's operations against the paper's formulas on fixed draws (each
written here independently, pixel by pixel), their gradients, the pipeline's draw order and per-sample
transforms, ADA's probability rule on scripted signs, and the contract check over every built-in."""
from __future__ import annotations

import functools
import importlib
from contextlib import nullcontext

import pytest
import torch

from cgx.config import load_config
from cgx.errors import PluginError
from cgx.plugins import DiscriminatorBatch, Registry, hookimpl, split
from cgx.testing import ContractError, check_augment
from cgx.train.augment import augmented
from cgx.train.components import RecipeComponents
from cgx_plugins.methods.pix2pix import Pix2Pix

ops = importlib.import_module("cgx_plugins.augments.ops")
diffaugment = importlib.import_module("cgx_plugins.augments.diffaugment")
ada = importlib.import_module("cgx_plugins.augments.ada")


def batch(n=3, c=3, h=16, w=12, seed=0, dtype=torch.float64):
    return (torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed), dtype=dtype) * 2 - 1)


# --- the operations, against the formulas ------------------------------------------------------------

def test_color_operations_are_the_papers_formulas():
    x, u = batch(), torch.tensor([0.0, 0.3, 0.99])
    for i in range(3):
        s = x[i]
        assert torch.allclose(ops.brightness(x, u)[i], s + (u[i] - 0.5))
        gray = s.mean(0)  # per pixel, over channels
        assert torch.allclose(ops.saturation(x, u)[i], (s - gray) * (2 * u[i]) + gray)
        m = s.mean()  # over the whole sample
        assert torch.allclose(ops.contrast(x, u)[i], (s - m) * (u[i] + 0.5) + m)


@pytest.mark.parametrize("h,w", [(16, 12), (9, 17)])
def test_translation_moves_each_sample_by_its_own_shift_with_zero_padding(h, w):
    x = batch(h=h, w=w)
    dy, dx = torch.tensor([-(h // 8), 0, h // 8]), torch.tensor([w // 8, -(w // 8), 1])
    out = ops.translation(x, dy, dx)
    for n in range(3):
        for i in range(h):
            for j in range(w):
                si, sj = i + int(dy[n]), j + int(dx[n])
                inside = 0 <= si < h and 0 <= sj < w
                want = x[n, :, si, sj] if inside else torch.zeros(3, dtype=x.dtype)
                assert torch.equal(out[n, :, i, j], want), (n, i, j)


@pytest.mark.parametrize("h,w", [(16, 12), (10, 7)])
def test_cutout_zeroes_half_the_side_around_the_drawn_centre(h, w):
    x = batch(h=h, w=w)
    oy, ox = torch.tensor([0, h // 2, h - (h // 2) % 2]), torch.tensor([w - (w // 2) % 2, 0, 3])
    out = ops.cutout(x, oy, ox)
    for n in range(3):
        rows = range(int(oy[n]) - (h // 2) // 2, int(oy[n]) - (h // 2) // 2 + h // 2)
        cols = range(int(ox[n]) - (w // 2) // 2, int(ox[n]) - (w // 2) // 2 + w // 2)
        for i in range(h):
            for j in range(w):
                cut = i in rows and j in cols
                assert torch.equal(out[n, :, i, j], torch.zeros(3, dtype=x.dtype) if cut else x[n, :, i, j])
        assert (out[n] == 0).all(0).sum() == len([r for r in rows if 0 <= r < h]) * len([c for c in cols if 0 <= c < w])


def test_draws_have_the_papers_ranges():
    x = batch(n=4000, c=1, h=16, w=24, dtype=torch.float32)
    torch.manual_seed(0)
    dy, dx = ops.translation_draw(x)
    assert set(dy.tolist()) == set(range(-2, 3)) and set(dx.tolist()) == set(range(-3, 4))
    oy, ox = ops.cutout_draw(x)  # side 16: cut 8 (even): centre in [0, 16]; side 24: cut 12: [0, 24]
    assert set(oy.tolist()) == set(range(0, 17)) and set(ox.tolist()) == set(range(0, 25))
    oy, _ = ops.cutout_draw(batch(n=4000, c=1, h=10, w=4, dtype=torch.float32))  # cut 5 (odd): [0, 9]
    assert set(oy.tolist()) == set(range(0, 10))


@pytest.mark.parametrize("name", ["brightness", "saturation", "contrast", "translation", "cutout"])
def test_every_operation_is_differentiable(name):
    [(draw, apply)] = [(d, a) for ops_ in ops.OPERATIONS.values() for n, d, a in ops_ if n == name]
    x = batch(n=2, h=8, w=8).requires_grad_(True)
    torch.manual_seed(3)
    draws = draw(x.detach())
    assert torch.autograd.gradcheck(lambda t: apply(t, *draws), (x,))


def test_the_pipeline_draws_per_sample_in_the_papers_order_for_real_and_fake_alike():
    """DiffAugment on [real; fake] applies to each sample the sequence brightness, saturation, contrast,
    translation, cutout with that sample's own draws, taken in that order from torch's generator."""
    real, fake = batch(n=2, seed=1), batch(n=2, seed=2)
    x = torch.cat([real, fake])
    torch.manual_seed(11)
    got = diffaugment.build_diffaugment(["color", "translation", "cutout"])(x)
    torch.manual_seed(11)
    u = [torch.rand(4, dtype=torch.float32) for _ in range(3)]
    dy = torch.randint(-2, 3, (4,)); dx = torch.randint(-1, 2, (4,))  # noqa: E702 (16 x 12: 2 and 1)
    oy = torch.randint(0, 17, (4,)); ox = torch.randint(0, 13, (4,))  # noqa: E702
    for i, sample in enumerate(x):
        s = sample[None]
        s = ops.brightness(s, u[0][i:i + 1])
        s = ops.saturation(s, u[1][i:i + 1])
        s = ops.contrast(s, u[2][i:i + 1])
        s = ops.translation(s, dy[i:i + 1], dx[i:i + 1])
        s = ops.cutout(s, oy[i:i + 1], ox[i:i + 1])
        assert torch.equal(got[i], s[0]), i


def test_policy_order_and_subset():
    x = batch()
    torch.manual_seed(5)
    got = diffaugment.build_diffaugment(["cutout", "translation"])(x)
    torch.manual_seed(5)
    oy, ox = ops.cutout_draw(x)
    y = ops.cutout(x, oy, ox)
    assert torch.equal(got, ops.translation(y, *ops.translation_draw(y)))
    assert torch.equal(diffaugment.build_diffaugment([])(x), x)


# --- ADA's probability --------------------------------------------------------------------------------

def scores_with_signs(positive: int, total: int, offset: float = 0.0) -> torch.Tensor:
    """A (1, 1, 1, total) score map with ``positive`` scores above ``offset``, the rest below."""
    s = torch.full((total,), offset - 0.25)
    s[:positive] = offset + 0.25
    return s.reshape(1, 1, 1, total)


def test_ada_p_follows_the_papers_rule_on_scripted_signs():
    """Every ``interval`` images: p <- max(0, p + sign(r_t - target) * images / speed), r_t = E[sign(D(real))]
    over every score of every rank since the last adjustment."""
    aug = ada.build_ada(target=0.6, interval=8, speed=40, initial_p=0.0)
    other_rank = torch.tensor([3.0, 10.0], dtype=torch.float64)  # another rank's signs: +3 over 10 scores
    script = [(10, 10), (9, 10), (1, 10), (0, 10), (10, 10), (10, 10), (8, 10), (2, 10), (10, 10), (10, 10)]
    p, images, total, count, seen = 0.0, 0, 0.0, 0.0, []
    for positive, n in script:
        aug.observe([scores_with_signs(positive, n), scores_with_signs(positive, n)], 0.0)  # two score maps
        aug.update(4, lambda t: t + other_rank)  # 4 images a step over all ranks
        total += 2 * (2 * positive - n) + 3.0
        count += 2 * n + 10
        images += 4
        if images >= 8:
            r_t = total / count
            sign = (r_t > 0.6) - (r_t < 0.6)
            p = max(0.0, p + sign * images / 40)
            images, total, count = 0, 0.0, 0.0
        seen.append(aug.p.item())
        assert aug.p.item() == p
    assert max(seen) > 0 and 0.0 in seen[2:]  # it rose and was clamped back at 0 (not a constant)


def test_ada_counts_signs_about_the_loss_decision_boundary():
    aug = ada.build_ada(interval=1, speed=10)
    aug.observe(scores_with_signs(7, 10, offset=0.5), 0.5)  # lsgan: labels 1 and 0
    aug.update(1, lambda t: t)
    assert aug.r_t.item() == pytest.approx(0.4) and aug.p.item() == 0.0
    from cgx_plugins.losses.lsgan import LSGANLoss
    assert LSGANLoss().decision_boundary == 0.5 and LSGANLoss(1.0, -1.0).decision_boundary == 0.0


def test_ada_gates_each_transformation_by_p():
    x = batch(n=64, h=8, w=8)
    aug = ada.build_ada(initial_p=0.0)
    assert torch.equal(aug(x), x)  # p = 0: every image as it was
    aug = ada.build_ada(policy=["color"], initial_p=1.0)
    torch.manual_seed(2)
    got = aug(x)
    torch.manual_seed(2)
    want = x
    for op in (ops.brightness, ops.saturation, ops.contrast):
        torch.rand(64)  # the gate (all pass at p = 1)
        want = op(want, torch.rand(64))
    assert torch.equal(got, want)
    aug = ada.build_ada(policy=["translation"], initial_p=0.5)
    torch.manual_seed(4)
    changed = (aug(x) != x).flatten(1).any(1).float().mean().item()
    assert 0.3 < changed < 0.7  # about half the samples shifted (some draw a zero shift)


def test_ada_state_restores_exactly():
    aug = ada.build_ada(interval=4, speed=10)
    for positive in (9, 1, 8):
        aug.observe(scores_with_signs(positive, 10), 0.0)
        aug.update(3, lambda t: t)
    state = {k: (v.clone() if torch.is_tensor(v) else v) for k, v in aug.state_dict().items()}
    fresh = ada.build_ada(interval=4, speed=10)
    fresh.load_state_dict(state)
    for a in (aug, fresh):
        a.observe(scores_with_signs(10, 10), 0.0)
        a.update(3, lambda t: t)
    assert torch.equal(aug.p, fresh.p) and fresh.p.item() > 0 and aug.images == fresh.images


# --- the contract, the kind ----------------------------------------------------------------------------

@pytest.mark.parametrize("build", [functools.partial(diffaugment.build_diffaugment),
                                   functools.partial(diffaugment.build_diffaugment, ["translation"]),
                                   functools.partial(ada.build_ada, initial_p=0.7)], ids=["diffaugment", "translation", "ada"])
def test_builtins_keep_the_contract(build):
    check_augment(build)


def test_the_contract_check_can_fail():
    class Mixing:
        def __call__(self, images):
            return images - images.mean(0, keepdim=True)  # samples mix

    class Detaching:
        def __call__(self, images):
            return images.detach() + 0.1

    with pytest.raises(ContractError, match="depends on the other samples"):
        check_augment(Mixing)
    with pytest.raises(ContractError, match="no gradient"):
        check_augment(Detaching)


def test_the_contract_check_catches_an_adaptive_state_that_does_not_restore():
    class Forgetful(ada.AdaptiveAugment):
        def load_state_dict(self, state):
            pass

    with pytest.raises(ContractError, match="did not restore"):
        check_augment(lambda: Forgetful(["color"], interval=1, speed=10))


def test_no_augment_may_be_named_none():
    class Plugin:
        @hookimpl
        def cgx_register_augments(self, register):
            register("none", lambda: (lambda x: x))

    with pytest.raises(PluginError, match="word for off"):
        Registry().add_plugin(Plugin(), source="test")


def test_augment_none_builds_nothing(tmp_path):
    from cgx.train.components import component_sections

    (tmp_path / "r.yaml").write_text("augment: none\n")
    cfg = load_config(tmp_path / "r.yaml")
    assert "augment" not in component_sections(cfg)
    make = RecipeComponents(cfg, Registry())
    assert make.augment is None and not make.discriminator("A")._forward_pre_hooks


def test_every_kind_of_discriminator_call_is_augmented_once(tmp_path, monkeypatch):
    """A multi-scale D is hooked at its outer module (each scale sees the one augmented image, as the
    authors' D does), pix2pix's conditional D gets the concatenated pair, and a gradient penalty's extra pass
    (DiscriminatorBatch.discriminator) is augmented too."""
    seen = []
    original = diffaugment.DiffAugment.__call__
    monkeypatch.setattr(diffaugment.DiffAugment, "__call__", lambda self, x: seen.append(tuple(x.shape)) or original(self, x))
    recipe = tmp_path / "r.yaml"
    recipe.write_text("plugins: [cgx_plugins.augments.diffaugment]\naugment: diffaugment\nloss: {gan: wgangp}\n"
                      "model: {discriminator: {name: multiscale, ndf: 4, n_layers: 1}}\n")
    make = RecipeComponents(load_config(recipe), Registry())
    d = make.discriminator("A")
    assert augmented(d) and not any(augmented(m) for m in d.scales.modules())
    real, fake = batch(n=2, h=32, w=32, dtype=torch.float32), batch(n=2, h=32, w=32, seed=1, dtype=torch.float32)
    scores = d(torch.cat([real, fake]))
    make.adversarial_loss().discriminator_loss(*split(scores, 2), DiscriminatorBatch(d, real, fake, nullcontext))
    assert seen == [(4, 3, 32, 32), (2, 3, 32, 32)]  # the scored batch, then the penalty's interpolates
    seen.clear()
    conditional = Pix2Pix().groups(make)["discriminators"]
    conditional(torch.cat([real, fake], 1), torch.cat([real, real], 1))
    assert seen == [(2, 6, 32, 32), (2, 6, 32, 32)]
