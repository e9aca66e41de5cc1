"""``blurcycle``: CycleGAN with the cycle loss on blurred images, and an auxiliary domain classifier (a
third-party cgx method with three network groups).

    L_G = L_GAN(G, D_B) + L_GAN(F, D_A) + w * (|blur(F(G(a))) - blur(a)| + |blur(G(F(b))) - blur(b)|)
          + v * (BCE(C(G(a)), B) + BCE(C(F(b)), A))
    L_C = BCE(C(a), A) + BCE(C(b), B)

blur: a k x k box filter (stride 1, reflect padding). C: a small classifier of which domain an image is
from, trained on real images with its own optimizer (``optim.classifier`` in the recipe); the generators
are pushed to make fakes it takes for the target domain. Generator phase, then discriminator phase on the
current fakes, then classifier phase. The groups are ``generators`` (G, F), ``discriminators`` (D_A, D_B)
and ``classifier`` (C); the engine (distribution, precision, checkpoints, resume, logging, eval) does the
rest."""
from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as nnf
from torch import nn

from cgx.plugins import Components, DiscriminatorBatch, StepResult, Trainable, fp32, frozen, hookimpl, split


def blur(x: torch.Tensor, k: int) -> torch.Tensor:
    if k <= 1:
        return x
    p = k // 2
    return nnf.avg_pool2d(nnf.pad(x, (p, k - 1 - p, p, k - 1 - p), mode="reflect"), k, stride=1)


class Pair(nn.Module):
    """Two networks as one group; ``forward`` runs both (one call per step through the wrapper)."""

    def __init__(self, first: nn.Module, second: nn.Module) -> None:
        super().__init__()
        self.first, self.second = first, second

    def forward(self, x: torch.Tensor, y: torch.Tensor):
        return self.first(x), self.second(y)


class Generators(Pair):
    def forward(self, a: torch.Tensor, b: torch.Tensor):
        fake_b, fake_a = self.first(a), self.second(b)
        return fake_b, fake_a, self.second(fake_b), self.first(fake_a)


class DomainClassifier(nn.Module):
    """Which domain an image is from: one logit per image, > 0 for domain B."""

    def __init__(self, channels: int, width: int = 8) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.Conv2d(width, 2 * width, 4, 2, 1), nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(2 * width, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)


def domain_loss(logits: torch.Tensor, domain: str) -> torch.Tensor:
    """BCE of ``logits`` against every image being from ``domain`` ("A": 0, "B": 1)."""
    logits = fp32(logits)
    target = torch.full_like(logits, 1.0 if domain == "B" else 0.0)
    return nnf.binary_cross_entropy_with_logits(logits, target)


class BlurCycleStep:
    def __init__(self, groups: Mapping[str, Trainable], gan, weight: float, k: int, aux_weight: float,
                 autocast) -> None:
        self.gens, self.discs, self.classifier = groups["generators"], groups["discriminators"], groups["classifier"]
        self.gan, self.weight, self.k, self.aux_weight, self.autocast = gan, weight, k, aux_weight, autocast

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> StepResult:
        losses, fake_b, fake_a, rec_a, rec_b = self.generator_phase(a, b)
        losses.update(self.discriminator_phase(a, b, fake_a.detach(), fake_b.detach()))
        losses.update(self.classifier_phase(a, b))
        return StepResult({k: v.detach() for k, v in losses.items()},
                          {"A->B->A (real, fake, reconstructed)": [a, fake_b, rec_a],
                           "B->A->B (real, fake, reconstructed)": [b, fake_a, rec_b]})

    def generator_phase(self, a, b):
        """Update G and F; D_A, D_B and C are frozen (they get no gradient) and called bare."""
        with frozen(self.discs, self.classifier), self.autocast():
            fake_b, fake_a, rec_a, rec_b = self.gens(a, b)
            score_a, score_b = self.discs.module(fake_a, fake_b)
            domain_b, domain_a = self.classifier.module(fake_b), self.classifier.module(fake_a)
        losses = {  # outside autocast, in fp32
            "G/gan_AtoB": self.gan.generator_loss(score_b),
            "G/gan_BtoA": self.gan.generator_loss(score_a),
            "G/blur_cycle_A": self.weight * nnf.l1_loss(blur(fp32(rec_a), self.k), blur(a, self.k)),
            "G/blur_cycle_B": self.weight * nnf.l1_loss(blur(fp32(rec_b), self.k), blur(b, self.k)),
            "G/aux_AtoB": self.aux_weight * domain_loss(domain_b, "B"),
            "G/aux_BtoA": self.aux_weight * domain_loss(domain_a, "A"),
        }
        self.gens.backward(sum(losses.values()))
        self.gens.step()
        return losses, fake_b, fake_a, rec_a, rec_b

    def discriminator_phase(self, a, b, fa, fb) -> dict:
        """Update D_A and D_B: real and fake of each domain in one call through the wrapper, split after."""
        n = a.shape[0]
        with self.autocast():
            scores_a, scores_b = self.discs(torch.cat([a, fa]), torch.cat([b, fb]))
        d = self.discs.module
        losses = {"D/A": self.gan.discriminator_loss(*split(scores_a, n), DiscriminatorBatch(d.first, a, fa, self.autocast)),
                  "D/B": self.gan.discriminator_loss(*split(scores_b, n), DiscriminatorBatch(d.second, b, fb, self.autocast))}
        self.discs.backward(sum(losses.values()))
        self.discs.step()
        return losses

    def classifier_phase(self, a, b) -> dict:
        """Update C on real images of both domains, in one call through the wrapper."""
        with self.autocast():
            logits_a, logits_b = self.classifier(torch.cat([a, b])).split([a.shape[0], b.shape[0]])
        losses = {"C/domain": domain_loss(logits_a, "A") + domain_loss(logits_b, "B")}
        self.classifier.backward(losses["C/domain"])
        self.classifier.step()
        return losses

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class BlurCycle:
    def __init__(self, cycle_weight: float, blur: int, aux_weight: float) -> None:
        self.cycle_weight, self.blur, self.aux_weight = cycle_weight, blur, aux_weight

    def groups(self, make: Components) -> dict[str, nn.Module]:
        """Three groups, each wrapped once by the engine with its own optimizer (optim.<group> in the recipe)."""
        if make.channels("A") != make.channels("B"):
            raise ValueError(f"the domain classifier sees images of both domains: it needs the same channel count "
                             f"(data.a.channels={make.channels('A')}, data.b.channels={make.channels('B')})")
        return {"generators": Generators(make.generator("A", "B"), make.generator("B", "A")),
                "discriminators": Pair(make.discriminator("A"), make.discriminator("B")),
                "classifier": DomainClassifier(make.channels("A"))}

    def build_step(self, groups: Mapping[str, Trainable], make: Components, autocast) -> BlurCycleStep:
        return BlurCycleStep(groups, make.adversarial_loss(), self.cycle_weight, self.blur, self.aux_weight, autocast)

    def translators(self, generators: Generators) -> dict[str, nn.Module]:
        return {"AtoB": generators.first, "BtoA": generators.second}


def build_blurcycle(cycle_weight: float = 10.0, blur: int = 5, aux_weight: float = 1.0) -> BlurCycle:
    """cycle_weight: each blurred cycle term; blur: the box filter's side (1: plain CycleGAN cycle);
    aux_weight: each term of the domain classifier's verdict on the fakes (0: C trains, the generators ignore it)."""
    if not cycle_weight >= 0:
        raise ValueError(f"cycle_weight must be >= 0, got {cycle_weight}")
    if not blur >= 1:
        raise ValueError(f"blur must be >= 1, got {blur}")
    if not aux_weight >= 0:
        raise ValueError(f"aux_weight must be >= 0, got {aux_weight}")
    return BlurCycle(cycle_weight, blur, aux_weight)


@hookimpl
def cgx_register_methods(register):
    register("blurcycle", build_blurcycle)
