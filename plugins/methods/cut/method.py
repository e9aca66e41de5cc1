"""CUT and FastCUT (Park, Efros, Zhang, Zhu, "Contrastive Learning for Unpaired Image-to-Image
Translation", ECCV 2020) as a method: one generator G: A -> B, one discriminator D_B, the GAN loss
and PatchNCE between the encoder features of x and of G(x) (``patchnce``), no cycle, no F, no
history buffer.

    L(G, H, D) = gan_weight * L_GAN(G, D) + nce_weight * mean_layers PatchNCE(G, H, a)
                 [CUT: + the identity term on B, the two NCE terms averaged]

The step follows the authors' ``CUTModel.optimize_parameters`` (``models/cut_model.py``): forward
(G on [a; b] when the identity term is on, the whole batch flipped left-right with probability 1/2
under flip equivariance), then the discriminator phase on the current fakes, then the generator
phase (G and the projection heads H, with D frozen). The NCE features and patch sampling run in the
generator group's forward, before the discriminator phase: nothing in them depends on D, and the
random draws keep the authors' order (flip, then the patches of each NCE term, layer by layer).
``cgx.train.reference_cut`` states the same step plainly; tests/methods/test_cut_reference.py holds
this one equal to it."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import torch
from torch import nn

from cgx.plugins import set_requires_grad, split
from cgx.plugins.types import (AdversarialLoss, Components, DiscriminatorBatch, FeatureGenerator, StepResult,
                               Trainable)

from .patchnce import ProjectionHeads, patch_nce, sample_patches


@dataclass
class CUTForward:
    fake_b: torch.Tensor  # G(a) (flipped left-right when ``flipped``)
    nce: torch.Tensor  # nce_weight x PatchNCE(a, G(a)), averaged over the layers
    idt_b: torch.Tensor | None = None  # G(b)
    nce_idt: torch.Tensor | None = None  # nce_weight x PatchNCE(b, G(b))
    flipped: bool = False


class CUTGenerators(nn.Module):
    """G and the projection heads (one per NCE layer): everything the generator phase trains, called
    once per step so that DDP and DeepSpeed see one forward of the group."""

    def __init__(self, G: nn.Module, heads: ProjectionHeads, layers: tuple[int, ...], num_patches: int,
                 temperature: float, nce_weight: float, identity: bool, flip: bool) -> None:
        super().__init__()
        self.G, self.heads = G, heads
        self.layers, self.num_patches, self.temperature = tuple(layers), num_patches, temperature
        self.nce_weight, self.identity, self.flip = nce_weight, identity, flip

    def forward(self, real_a: torch.Tensor, real_b: torch.Tensor) -> CUTForward:
        n = real_a.shape[0]
        real = torch.cat([real_a, real_b]) if self.identity else real_a
        flipped = self.flip and bool(torch.rand(()) < 0.5)  # torch's CPU generator (saved per rank)
        if flipped:
            real = real.flip(3)
        fake = self.G(real)
        out = CUTForward(fake_b=fake[:n], nce=self.nce(real_a, fake[:n], flipped), flipped=flipped)
        if self.identity:
            out.idt_b = fake[n:]
            out.nce_idt = self.nce(real_b, out.idt_b, flipped)
        return out

    def nce(self, source: torch.Tensor, target: torch.Tensor, flipped: bool) -> torch.Tensor:
        """nce_weight x PatchNCE between source's features (keys, no gradient) and target's (queries),
        averaged over the layers (the authors' ``calculate_NCE_loss``)."""
        q = self.G.encode_features(target, self.layers)
        if flipped:  # back into the source's frame
            q = [f.flip(3) for f in q]
        with torch.no_grad():  # the authors detach the keys: no gradient flows through them
            k = self.G.encode_features(source, self.layers)
        ids = sample_patches(k, self.num_patches)
        k, q = self.heads(k, ids), self.heads(q, ids)
        n = source.shape[0]
        total = sum((self.nce_weight * patch_nce(fq, fk, n, self.temperature)).mean() for fq, fk in zip(q, k))
        return total / len(self.layers)


class Discriminator(nn.Module):
    """D_B alone, as a group (the engine wraps each group once)."""

    def __init__(self, D: nn.Module) -> None:
        super().__init__()
        self.D = D

    def forward(self, images: torch.Tensor):
        return self.D(images)


class CUTStep:
    def __init__(self, gens: Trainable, discs: Trainable, gan: AdversarialLoss, gan_weight: float,
                 autocast: Callable) -> None:
        self.gens, self.discs, self.gan, self.gan_weight, self.autocast = gens, discs, gan, gan_weight, autocast

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult:
        with self.autocast():
            out = self.gens(real_a, real_b)
        losses = self.discriminator_phase(real_b, out.fake_b.detach())
        losses.update(self.generator_phase(out))
        shown = (lambda x: x.flip(3)) if out.flipped else (lambda x: x)
        rows = [real_a, shown(out.fake_b)] + ([real_b, shown(out.idt_b)] if out.idt_b is not None else [])
        title = "A->B (real A, fake B" + (", real B, G(B))" if out.idt_b is not None else ")")
        return StepResult(losses, {title: rows})

    def discriminator_phase(self, real_b: torch.Tensor, fake_b: torch.Tensor) -> dict:
        """Update D on real B and the current fakes (no history buffer), in one call."""
        n = real_b.shape[0]
        with self.autocast():
            scores = self.discs(torch.cat([real_b, fake_b]))
        batch = DiscriminatorBatch(self.discs.module.D, real_b, fake_b, self.autocast)
        losses = {"D/B": self.gan.discriminator_loss(*split(scores, n), batch)}
        self.discs.backward(losses["D/B"])
        self.discs.step()
        return {k: v.detach() for k, v in losses.items()}

    def generator_phase(self, out: CUTForward) -> dict:
        """Update G and the heads with D frozen (and not synchronised across ranks). The logged terms
        add up to the generator's loss: with the identity term each NCE term carries its 1/2."""
        frozen = set_requires_grad(self.discs.module, False)
        losses = {}
        if self.gan_weight > 0:
            with self.autocast():
                score = self.discs.module(out.fake_b)
            losses["G/gan"] = self.gan_weight * self.gan.generator_loss(score)
        if out.nce_idt is None:
            losses["G/nce"] = out.nce
        else:
            losses["G/nce"], losses["G/nce_idt"] = 0.5 * out.nce, 0.5 * out.nce_idt
        losses.update(self.more_generator_terms(out))
        self.gens.backward(sum(losses.values()))
        self.gens.step()
        set_requires_grad(frozen, True)
        return {k: v.detach() for k, v in losses.items()}

    def more_generator_terms(self, out: CUTForward) -> dict:
        """Further generator terms of a variant (semantic consistency: ``SemanticCUTStep``); none here."""
        return {}

    def state_dict(self) -> dict:
        return {}  # no history buffer; the patch and flip draws come from the per-rank RNG the engine saves

    def load_state_dict(self, state: dict) -> None:
        pass


class CUT:
    """The method's record (``method: {name: cut}`` or ``fastcut``): G from ``model.generator`` (it must
    expose encoder features: ``cgx.plugins.types.FeatureGenerator``), D_B from ``model.discriminator``,
    the GAN loss from ``loss.gan``; ``loss.cycle`` and ``buffer`` are not used."""

    def __init__(self, gan_weight: float, nce_weight: float, nce_idt: bool, nce_layers: tuple[int, ...],
                 num_patches: int, head_units: int, temperature: float, flip_equivariance: bool) -> None:
        self.gan_weight, self.nce_weight, self.nce_idt = gan_weight, nce_weight, nce_idt
        self.nce_layers, self.num_patches, self.head_units = tuple(nce_layers), num_patches, head_units
        self.temperature, self.flip_equivariance = temperature, flip_equivariance

    def groups(self, make: Components) -> dict[str, nn.Module]:
        """``generators``: G with its projection heads (the PatchNCE phase trains both); ``discriminators``: D_B."""
        generators = self._generators(make)
        return {"generators": generators, "discriminators": Discriminator(make.discriminator("B"))}

    def _generators(self, make: Components) -> CUTGenerators:
        if self.nce_idt and make.channels("A") != make.channels("B"):
            raise ValueError(f"nce_idt=true needs domains with the same channel count (data.a.channels="
                             f"{make.channels('A')}, data.b.channels={make.channels('B')}): G(b) needs b as an "
                             f"input of G; set method.nce_idt=false")
        G = make.generator("A", "B")
        if not isinstance(G, FeatureGenerator):
            raise ValueError(f"its PatchNCE loss needs a generator that exposes encoder features "
                             f"(encode_features(x, layers) and feature_channels(layers): "
                             f"cgx.plugins.types.FeatureGenerator); model.generator builds a {type(G).__name__}, "
                             f"which does not; use model.generator.name=resnet")
        try:
            channels = G.feature_channels(self.nce_layers)
        except ValueError as e:
            raise ValueError(f"nce_layers={list(self.nce_layers)}: {e}") from None
        heads = ProjectionHeads(channels, self.head_units)
        return CUTGenerators(G, heads, self.nce_layers, self.num_patches, self.temperature, self.nce_weight,
                             self.nce_idt, self.flip_equivariance)

    def build_step(self, groups: Mapping[str, Trainable], make: Components, autocast) -> CUTStep:
        return CUTStep(groups["generators"], groups["discriminators"], make.adversarial_loss(), self.gan_weight,
                       autocast)

    def translators(self, generators: CUTGenerators) -> dict[str, nn.Module]:
        return {"AtoB": generators.G}
