"""pix2pix (Isola, Zhu, Zhou, Efros, CVPR 2017) as a method: conditional GAN on paired data.

    L(G, D) = L_cGAN(G, D) + w_L1 * |y - G(x)|

with x the input image and y its ground truth (``direction: AtoB``: x from domain A, y from B;
``BtoA`` the other way). D is conditional: it scores (x, y) pairs, the input and an output
concatenated along channels (6 for RGB), so ``model.discriminator`` is built with
``in_channels = channels(A) + channels(B)``.

As the authors' ``models/pix2pix_model.py`` (``optimize_parameters``): G(x) once; then the discriminator
phase, D on the detached fake pair and on the real pair in two separate calls (batch-norm statistics per
call, as theirs), loss halved (the ``loss.gan`` plugin's discriminator loss: vanilla halves it); then the
generator phase with D frozen: the GAN term on D(x, G(x)) plus ``l1_weight`` x L1(G(x), y) (the distance is
``loss.cycle``'s plugin: l1 by default, their ``L1Loss``). No history
buffer (their ``pool_size=0``). The recipe gives the networks and losses (recipes/pix2pix_256.yaml: U-Net
256 with dropout and batch norm, 70x70 PatchGAN with batch norm, vanilla GAN loss, Adam 2e-4 (0.5, 0.999),
batch 1). ``cgx.train.reference.ReferencePix2Pix`` states the step plainly;
tests/train/test_pix2pix_reference.py holds this step equal to it.

The method learns pairs (``paired = True``): the engine refuses unpaired data for it (``data.paired``).
It learns one direction: translate, eval and export name the other one as absent.
"""
from __future__ import annotations

from typing import Callable, Literal, Mapping

import torch
from torch import nn

from cgx.plugins import hookimpl, set_requires_grad
from cgx.plugins.args import at_least
from cgx.plugins.types import (AdversarialLoss, Components, DiscriminatorBatch, ReconstructionLoss, StepResult,
                               Trainable)


class Pix2PixGenerator(nn.Module):
    """The generator group: one network, G: x -> y."""

    def __init__(self, G: nn.Module) -> None:
        super().__init__()
        self.G = G

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.G(x)


class ConditionalDiscriminator(nn.Module):
    """The discriminator group: D on (input, output) pairs concatenated along channels. ``forward`` scores
    a fake and a real pair in two calls of D (one wrapper call, so DDP synchronises once)."""

    def __init__(self, D: nn.Module) -> None:
        super().__init__()
        self.D = D

    def forward(self, fake_pair: torch.Tensor, real_pair: torch.Tensor):
        return self.D(fake_pair), self.D(real_pair)


class Pix2PixStep:
    def __init__(self, gens: Trainable, discs: Trainable, gan: AdversarialLoss, distance: ReconstructionLoss,
                 l1_weight: float, direction: str, autocast: Callable) -> None:
        self.gens, self.discs, self.gan, self.distance = gens, discs, gan, distance
        self.l1_weight, self.direction, self.autocast = l1_weight, direction, autocast

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult:
        x, y = (real_a, real_b) if self.direction == "AtoB" else (real_b, real_a)
        with self.autocast():
            fake = self.gens(x)
        losses = self.discriminator_phase(x, y, fake)
        losses.update(self.generator_phase(x, y, fake))
        src, dst = self.direction[0], self.direction[-1]
        return StepResult(losses, {f"{src}->{dst} (input, output, ground truth)": [x, fake.detach(), y]})

    def discriminator_phase(self, x, y, fake) -> dict:
        """Update D on the real pair (x, y) and the fake pair (x, G(x)) (detached)."""
        fake_pair = torch.cat([x, fake.detach()], 1)
        real_pair = torch.cat([x, y], 1)
        with self.autocast():
            fake_scores, real_scores = self.discs(fake_pair, real_pair)
        batch = DiscriminatorBatch(self.discs.module.D, real_pair, fake_pair, self.autocast)
        loss = self.gan.discriminator_loss(real_scores, fake_scores, batch)
        self.discs.backward(loss)
        self.discs.step()
        return {"D/pair": loss.detach()}

    def generator_phase(self, x, y, fake) -> dict:
        """Update G with D frozen (and not synchronised across ranks): fool D, and L1 to the ground truth."""
        frozen = set_requires_grad(self.discs.module, False)
        with self.autocast():
            scores = self.discs.module.D(torch.cat([x, fake], 1))
        losses = {f"G/gan_{self.direction}": self.gan.generator_loss(scores),
                  f"G/L1_{self.direction}": self.l1_weight * self.distance(fake, y)}
        self.gens.backward(sum(losses.values()))
        self.gens.step()
        set_requires_grad(frozen, True)
        return {k: v.detach() for k, v in losses.items()}

    def state_dict(self) -> dict:
        return {}  # no history buffer, no other per-rank state

    def load_state_dict(self, state: dict) -> None:
        pass


class Pix2Pix:
    """The method's record: the direction learned and the L1 weight; G from ``model.generator``, the
    conditional D from ``model.discriminator`` (input and output channels), the GAN loss from ``loss.gan``."""

    paired = True
    """Trains on pairs: needs ``data.paired=true`` (cgx.plugins.types.Method.paired)."""

    def __init__(self, direction: str = "AtoB", l1_weight: float = 100.0) -> None:
        self.direction, self.l1_weight = direction, l1_weight
        self.source, self.target = direction[0], direction[-1]

    def groups(self, make: Components) -> dict[str, nn.Module]:
        """``generators``: G; ``discriminators``: the conditional D, which sees input and output channels."""
        generators = Pix2PixGenerator(make.generator(self.source, self.target))
        channels = make.channels(self.source) + make.channels(self.target)
        return {"generators": generators,
                "discriminators": ConditionalDiscriminator(make.discriminator(self.target, in_channels=channels))}

    def build_step(self, groups: Mapping[str, Trainable], make: Components, autocast) -> Pix2PixStep:
        return Pix2PixStep(groups["generators"], groups["discriminators"], make.adversarial_loss(),
                           make.reconstruction_loss(), self.l1_weight, self.direction, autocast)

    def translators(self, generators: Pix2PixGenerator) -> dict[str, nn.Module]:
        return {self.direction: generators.G}


def build_pix2pix(direction: Literal["AtoB", "BtoA"] = "AtoB", l1_weight: float = 100.0) -> Pix2Pix:
    """``direction``: AtoB learns G: A -> B (input from domain A, ground truth from B), BtoA the reverse
    (the authors' ``--direction``); ``l1_weight``: the L1 term's weight (their ``lambda_L1`` = 100)."""
    at_least(0, l1_weight=l1_weight)
    return Pix2Pix(direction, l1_weight)


@hookimpl
def cgx_register_methods(register):
    register("pix2pix", build_pix2pix)
