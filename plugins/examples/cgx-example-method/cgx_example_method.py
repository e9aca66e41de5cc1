"""``blurcycle``: CycleGAN with the cycle loss on blurred images (a third-party cgx method).

    L = L_GAN(G, D_B) + L_GAN(F, D_A) + w * (|blur(F(G(a))) - blur(a)| + |blur(G(F(b))) - blur(b)|)

blur: a k x k box filter (stride 1, reflect padding). Generator phase, then discriminator phase on the
current fakes. The engine (distribution, precision, checkpoints, resume, logging, eval) does the rest."""
from __future__ import annotations

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


class BlurCycleStep:
    def __init__(self, gens: Trainable, discs: Trainable, gan, weight: float, k: int, autocast) -> None:
        self.gens, self.discs, self.gan, self.weight, self.k, self.autocast = gens, discs, gan, weight, k, autocast

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> StepResult:
        with frozen(self.discs), self.autocast():  # generator phase: D_A, D_B get no gradient
            fake_b, fake_a, rec_a, rec_b = self.gens(a, b)
            score_a, score_b = self.discs.module(fake_a, fake_b)
        losses = {  # outside autocast, in fp32
            "G/gan_AtoB": self.gan.generator_loss(score_b),
            "G/gan_BtoA": self.gan.generator_loss(score_a),
            "G/blur_cycle_A": self.weight * nnf.l1_loss(blur(fp32(rec_a), self.k), blur(a, self.k)),
            "G/blur_cycle_B": self.weight * nnf.l1_loss(blur(fp32(rec_b), self.k), blur(b, self.k)),
        }
        self.gens.backward(sum(losses.values()))
        self.gens.step()

        n = a.shape[0]
        fa, fb = fake_a.detach(), fake_b.detach()
        with self.autocast():  # discriminator phase: real and fake of each domain in one call, split after
            scores_a, scores_b = self.discs(torch.cat([a, fa]), torch.cat([b, fb]))
        d = self.discs.module
        d_losses = {"D/A": self.gan.discriminator_loss(*split(scores_a, n), DiscriminatorBatch(d.first, a, fa, self.autocast)),
                    "D/B": self.gan.discriminator_loss(*split(scores_b, n), DiscriminatorBatch(d.second, b, fb, self.autocast))}
        self.discs.backward(sum(d_losses.values()))
        self.discs.step()
        losses.update(d_losses)
        return StepResult({k: v.detach() for k, v in losses.items()},
                          {"A->B->A (real, fake, reconstructed)": [a, fake_b, rec_a],
                           "B->A->B (real, fake, reconstructed)": [b, fake_a, rec_b]})

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class BlurCycle:
    def __init__(self, cycle_weight: float, blur: int) -> None:
        self.cycle_weight, self.blur = cycle_weight, blur

    def build_generators(self, make: Components) -> Generators:
        return Generators(make.generator("A", "B"), make.generator("B", "A"))

    def build_discriminators(self, make: Components) -> Pair:
        return Pair(make.discriminator("A"), make.discriminator("B"))

    def build_step(self, generators: Trainable, discriminators: Trainable, make: Components, autocast) -> BlurCycleStep:
        return BlurCycleStep(generators, discriminators, make.adversarial_loss(), self.cycle_weight, self.blur, autocast)

    def translators(self, generators: Generators) -> dict[str, nn.Module]:
        return {"AtoB": generators.first, "BtoA": generators.second}


def build_blurcycle(cycle_weight: float = 10.0, blur: int = 5) -> BlurCycle:
    """cycle_weight: each blurred cycle term; blur: the box filter's side (1: plain CycleGAN cycle)."""
    if not cycle_weight >= 0:
        raise ValueError(f"cycle_weight must be >= 0, got {cycle_weight}")
    if not blur >= 1:
        raise ValueError(f"blur must be >= 1, got {blur}")
    return BlurCycle(cycle_weight, blur)


@hookimpl
def cgx_register_methods(register):
    register("blurcycle", build_blurcycle)
