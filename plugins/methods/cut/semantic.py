"""CUT and FastCUT with semantic consistency (``method.semantic``; ``plugins/methods/semantic.py``): the
segmenter is a third group; the generator phase gains weight x CE(S(G(a)), labels_a) (CUT learns one
direction: there is no F term), and after it the segmenter takes its step on the real images. Under
flip equivariance G saw the flipped batch, so the labels are flipped with it."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from cgx.plugins.types import AdversarialLoss, Components, StepResult, Trainable

from ..semantic import GROUP, SemanticConsistency, SemanticSpec, build_segmenter_group, semantic_for
from .method import CUT, CUTForward, CUTStep


class SemanticCUTStep(CUTStep):
    def __init__(self, gens: Trainable, discs: Trainable, gan: AdversarialLoss, gan_weight: float, autocast: Callable,
                 semantic: SemanticConsistency) -> None:
        super().__init__(gens, discs, gan, gan_weight, autocast)
        self.semantic = semantic
        self.labels_a: torch.Tensor | None = None

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor, labels_a: torch.Tensor | None = None,
                 labels_b: torch.Tensor | None = None) -> StepResult:
        if self.semantic.pretraining:
            return StepResult(self.semantic.segmenter_phase(real_a, labels_a, real_b, labels_b), {})
        self.labels_a = labels_a
        try:
            result = super().__call__(real_a, real_b)
        finally:
            self.labels_a = None
        result.losses.update(self.semantic.segmenter_phase(real_a, labels_a, real_b, labels_b))
        return result

    def more_generator_terms(self, out: CUTForward) -> dict:
        labels = self.labels_a
        if out.flipped and labels is not None:  # fake_b is G(a flipped left-right)
            labels = labels.flip(-1)
        return self.semantic.generator_terms(out.fake_b, labels)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "semantic": self.semantic.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.semantic.load_state_dict(state["semantic"])


class SemanticCUT(CUT):
    """CUT/FastCUT with ``method.semantic``: the groups ``generators``, ``discriminators`` and ``segmenter``
    (built last, so that the first two start from the weights plain CUT gets)."""

    uses_labels = True

    def __init__(self, *args, semantic: SemanticSpec) -> None:
        super().__init__(*args)
        self.semantic = semantic

    def groups(self, make: Components) -> dict[str, nn.Module]:
        return {**super().groups(make), GROUP: build_segmenter_group(self.semantic, make)}

    def build_segmenter(self, make: Components) -> nn.Module:
        """The segmenter group, bare (``cgx eval --segmenter run``; ``init_from`` is not read)."""
        return build_segmenter_group(self.semantic, make)

    def build_step(self, groups, make: Components, autocast) -> SemanticCUTStep:
        semantic = semantic_for(self.semantic, groups[GROUP], make, autocast)
        return SemanticCUTStep(groups["generators"], groups["discriminators"], make.adversarial_loss(),
                               self.gan_weight, autocast, semantic)
