"""CycleGAN (Zhu, Park, Isola, Efros, ICCV 2017) as a method: two generators, two discriminators,
a generator phase, then a discriminator phase on history-buffer fakes.

    L(G, F, D_A, D_B) = L_GAN(G, D_B) + L_GAN(F, D_A)
                        + w_cyc * (|F(G(a)) - a| + |G(F(b)) - b|)
                        + w_idt * (|G(b) - b| + |F(a) - a|)

G maps A -> B and F maps B -> A. D_A judges images of domain A, D_B of domain B. Each pair is one
network group (``generators``, ``discriminators``), which the engine wraps (DDP, DeepSpeed) once, each
with its own optimizer (``optim``, ``optim.<group>``). ``cgx.train.reference`` states the same
algorithm plainly; tests/train/test_reference.py holds this step equal to it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from cgx.plugins import hookimpl, set_requires_grad, split
from cgx.plugins.args import at_least
from cgx.plugins.types import (AdversarialLoss, Components, DiscriminatorBatch, ReconstructionLoss, StepResult,
                               Trainable)

from .semantic import GROUP, SemanticConsistency, SemanticSpec, build_segmenter_group, parse_semantic, semantic_for


@dataclass
class Translations:
    fake_b: torch.Tensor  # G(a)
    rec_a: torch.Tensor   # F(G(a))
    fake_a: torch.Tensor  # F(b)
    rec_b: torch.Tensor   # G(F(b))
    idt_b: torch.Tensor | None = None  # G(b), for the identity loss
    idt_a: torch.Tensor | None = None  # F(a)


class GeneratorPair(nn.Module):
    """G and F, called the fewest times the algorithm allows.

    With the identity loss, G sees a (for G(a)) and b (for the identity G(b)), and F sees b and a.
    When both generators declare ``per_sample = True`` (a sample's output does not depend on the
    others in its batch: instance norm or none, not batch norm), G runs once on [a; b] and F once on
    [b; a]: the same results in four generator calls instead of six, each on a larger batch."""

    def __init__(self, G: nn.Module, F: nn.Module, batch_calls: bool = True) -> None:
        super().__init__()
        self.G, self.F = G, F
        self.batch_calls = batch_calls and all(getattr(net, "per_sample", False) is True for net in (G, F))

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor, identity: bool = True) -> Translations:
        if identity and self.batch_calls:
            na, nb = real_a.shape[0], real_b.shape[0]
            fake_b, idt_b = self.G(torch.cat([real_a, real_b])).split([na, nb])
            fake_a, idt_a = self.F(torch.cat([real_b, real_a])).split([nb, na])
            return Translations(fake_b=fake_b, rec_a=self.F(fake_b), fake_a=fake_a, rec_b=self.G(fake_a),
                                idt_b=idt_b, idt_a=idt_a)
        fake_b = self.G(real_a)
        fake_a = self.F(real_b)
        out = Translations(fake_b=fake_b, rec_a=self.F(fake_b), fake_a=fake_a, rec_b=self.G(fake_a))
        if identity:
            out.idt_b, out.idt_a = self.G(real_b), self.F(real_a)
        return out


class DiscriminatorPair(nn.Module):
    def __init__(self, D_A: nn.Module, D_B: nn.Module) -> None:
        super().__init__()
        self.D_A, self.D_B = D_A, D_B

    def forward(self, images_a: torch.Tensor, images_b: torch.Tensor):
        return self.D_A(images_a), self.D_B(images_b)


@dataclass
class Objective:
    gan: AdversarialLoss
    reconstruction: ReconstructionLoss
    cycle_weight: float = 10.0
    identity_weight: float = 5.0


class CycleGANStep:
    def __init__(self, gens: Trainable, discs: Trainable, objective: Objective, pool_a, pool_b,
                 autocast: Callable) -> None:
        self.gens, self.discs = gens, discs
        self.obj = objective
        self.pool_a, self.pool_b = pool_a, pool_b
        self.autocast = autocast

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult:
        losses, t = self.generator_phase(real_a, real_b)
        losses.update(self.discriminator_phase(real_a, real_b, t))
        return StepResult(losses, {"A->B->A (real, fake, reconstructed)": [real_a, t.fake_b, t.rec_a],
                                   "B->A->B (real, fake, reconstructed)": [real_b, t.fake_a, t.rec_b]})

    def generator_phase(self, real_a, real_b) -> tuple[dict, Translations]:
        """Update G and F with D_A and D_B frozen (and not synchronised across ranks)."""
        obj = self.obj
        frozen = set_requires_grad(self.discs.module, False)  # only what was trainable
        with self.autocast():
            t = self.gens(real_a, real_b, identity=obj.identity_weight > 0)
            score_a, score_b = self.discs.module(t.fake_a, t.fake_b)
        losses = {
            "G/gan_AtoB": obj.gan.generator_loss(score_b),
            "G/gan_BtoA": obj.gan.generator_loss(score_a),
            "G/cycle_A": obj.cycle_weight * obj.reconstruction(t.rec_a, real_a),
            "G/cycle_B": obj.cycle_weight * obj.reconstruction(t.rec_b, real_b),
        }
        if obj.identity_weight > 0:
            losses["G/identity_A"] = obj.identity_weight * obj.reconstruction(t.idt_a, real_a)
            losses["G/identity_B"] = obj.identity_weight * obj.reconstruction(t.idt_b, real_b)
        losses.update(self.more_generator_terms(t))
        self.gens.backward(sum(losses.values()))
        self.gens.step()
        set_requires_grad(frozen, True)
        return {k: v.detach() for k, v in losses.items()}, t

    def more_generator_terms(self, t: Translations) -> dict:
        """Further generator terms of a variant (semantic consistency: ``SemanticCycleGANStep``); none here."""
        return {}

    def discriminator_phase(self, real_a, real_b, t: Translations) -> dict:
        """Update D_A and D_B on real images and fakes drawn from the history buffers, in one call."""
        fake_a = self.pool_a.query(t.fake_a.detach())
        fake_b = self.pool_b.query(t.fake_b.detach())
        n = real_a.shape[0]
        with self.autocast():
            scores_a, scores_b = self.discs(torch.cat([real_a, fake_a]), torch.cat([real_b, fake_b]))
        gan, discs = self.obj.gan, self.discs.module
        losses = {
            "D/A": gan.discriminator_loss(*split(scores_a, n), DiscriminatorBatch(discs.D_A, real_a, fake_a, self.autocast)),
            "D/B": gan.discriminator_loss(*split(scores_b, n), DiscriminatorBatch(discs.D_B, real_b, fake_b, self.autocast)),
        }
        self.discs.backward(sum(losses.values()))
        self.discs.step()
        return {k: v.detach() for k, v in losses.items()}

    def state_dict(self) -> dict:
        return {"buffers": {"A": self.pool_a.state_dict(), "B": self.pool_b.state_dict()}}

    def load_state_dict(self, state: dict) -> None:
        self.pool_a.load_state_dict(state["buffers"]["A"])
        self.pool_b.load_state_dict(state["buffers"]["B"])


class CycleGAN:
    """The method's record: weights of the cycle and identity terms; G, F from ``model.generator``,
    D_A, D_B from ``model.discriminator``, the history buffers from ``buffer``, the losses from
    ``loss.gan`` and ``loss.cycle``."""

    def __init__(self, cycle_weight: float = 10.0, identity_weight: float = 5.0) -> None:
        self.cycle_weight, self.identity_weight = cycle_weight, identity_weight

    def groups(self, make: Components) -> dict[str, nn.Module]:
        """The generator phase trains G and F (``generators``), the discriminator phase D_A and D_B
        (``discriminators``); built in that order."""
        if self.identity_weight > 0 and make.channels("A") != make.channels("B"):
            raise ValueError(f"identity_weight={self.identity_weight} needs domains with the same channel count "
                             f"(data.a.channels={make.channels('A')}, data.b.channels={make.channels('B')}): G(b) "
                             f"cannot be compared with b (the authors' code asserts input_nc == output_nc for it "
                             f"too); set method.identity_weight=0")
        generators = GeneratorPair(make.generator("A", "B"), make.generator("B", "A"))
        return {"generators": generators,
                "discriminators": DiscriminatorPair(make.discriminator("A"), make.discriminator("B"))}

    def build_step(self, groups: Mapping[str, Trainable], make: Components, autocast) -> CycleGANStep:
        pool_a, pool_b = make.buffer(), make.buffer()
        objective = Objective(make.adversarial_loss(), make.reconstruction_loss(), self.cycle_weight, self.identity_weight)
        return CycleGANStep(groups["generators"], groups["discriminators"], objective, pool_a, pool_b, autocast)

    def translators(self, generators: GeneratorPair) -> dict[str, nn.Module]:
        return {"AtoB": generators.G, "BtoA": generators.F}


class SemanticCycleGANStep(CycleGANStep):
    """CycleGAN's step with semantic consistency (``plugins/methods/semantic.py``): during the first
    ``pretrain_steps`` only the segmenter trains; then the generator phase gains the semantic terms and,
    after the discriminator phase, the segmenter takes its step on the real images."""

    def __init__(self, gens: Trainable, discs: Trainable, objective: Objective, pool_a, pool_b, autocast: Callable,
                 semantic: SemanticConsistency) -> None:
        super().__init__(gens, discs, objective, pool_a, pool_b, autocast)
        self.semantic = semantic
        self.labels: tuple = (None, None)

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor, labels_a: torch.Tensor | None = None,
                 labels_b: torch.Tensor | None = None) -> StepResult:
        if self.semantic.pretraining:
            return StepResult(self.semantic.segmenter_phase(real_a, labels_a, real_b, labels_b), {})
        self.labels = (labels_a, labels_b)
        try:
            result = super().__call__(real_a, real_b)
        finally:
            self.labels = (None, None)
        result.losses.update(self.semantic.segmenter_phase(real_a, labels_a, real_b, labels_b))
        return result

    def more_generator_terms(self, t: Translations) -> dict:
        labels_a, labels_b = self.labels
        return self.semantic.generator_terms(t.fake_b, labels_a, t.fake_a, labels_b)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "semantic": self.semantic.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.semantic.load_state_dict(state["semantic"])


class SemanticCycleGAN(CycleGAN):
    """CycleGAN with ``method.semantic``: a third network group, ``segmenter`` (built after the generators
    and discriminators, so that theirs are the initial weights plain CycleGAN gets), and labels in the step."""

    uses_labels = True

    def __init__(self, cycle_weight: float, identity_weight: float, semantic: SemanticSpec) -> None:
        super().__init__(cycle_weight, identity_weight)
        self.semantic = semantic

    def groups(self, make: Components) -> dict[str, nn.Module]:
        return {**super().groups(make), GROUP: build_segmenter_group(self.semantic, make)}

    def build_segmenter(self, make: Components) -> nn.Module:
        """The segmenter group, bare (``cgx eval --segmenter run`` loads a checkpoint's weights into it; its
        ``make`` does not start a run, so ``init_from`` is not read)."""
        return build_segmenter_group(self.semantic, make)

    def build_step(self, groups, make: Components, autocast) -> SemanticCycleGANStep:
        pool_a, pool_b = make.buffer(), make.buffer()
        objective = Objective(make.adversarial_loss(), make.reconstruction_loss(), self.cycle_weight, self.identity_weight)
        semantic = semantic_for(self.semantic, groups[GROUP], make, autocast)
        return SemanticCycleGANStep(groups["generators"], groups["discriminators"], objective, pool_a, pool_b, autocast,
                                    semantic)


def build_cyclegan(cycle_weight: float = 10.0, identity_weight: float = 5.0,
                   semantic: dict | None = None) -> CycleGAN:
    """``cycle_weight``: each cycle term, |F(G(a)) - a| and |G(F(b)) - b| (lambda_A = lambda_B = 10);
    ``identity_weight``: each identity term, |G(b) - b| and |F(a) - a| (the authors: 0.5 x the cycle
    weight); 0 skips it. ``semantic``: semantic consistency, ``{weight, network, pretrain_steps,
    init_from}`` (plugins/methods/semantic.py; needs data.a.labels); null: off."""
    at_least(0, cycle_weight=cycle_weight, identity_weight=identity_weight)
    spec = parse_semantic(semantic)
    if spec is None:
        return CycleGAN(cycle_weight, identity_weight)
    return SemanticCycleGAN(cycle_weight, identity_weight, spec)


@hookimpl
def cgx_register_methods(register):
    register("cyclegan", build_cyclegan)
