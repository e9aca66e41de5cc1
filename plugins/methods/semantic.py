"""Semantic consistency (CyCADA, Hoffman et al. 2018; joliGEN's "conservation of semantics"), an option
of the ``cyclegan`` and ``cut`` methods (``method.semantic``): a segmenter S, trained on domain A's real
images and their labels, and a generator term that keeps the translation's segmentation equal to the
source's labels:

    L_G  += weight * CE(S(G(a)), labels_a)        [and, where B has labels, weight * CE(S(F(b)), labels_b)]
    L_S   = CE(S(a), labels_a)                    [+ CE(S(b), labels_b) where B has labels]

CE is the mean cross-entropy over the pixels that are not ``ignore_index`` (0 where there are none).
S is the method's third network group, ``segmenter``, with its own optimizer (``optim.segmenter``); in
the generator phase it is frozen and called bare (no gradient reaches it, no rank synchronises), then it
takes its own step on the real images. (In the generator phase S runs in eval mode: a batch-norm
segmenter judges with its running statistics and the fakes do not change them.) For the first ``pretrain_steps`` steps only S trains (the
generators and discriminators wait, so that the term starts from a segmenter that means something);
``init_from`` starts S from a file of its weights instead (a state dict, ``torch.save(S.state_dict())``,
loaded with ``weights_only``).

Recipe: ``method: {name: cyclegan, semantic: {weight: 1.0, network: {name: unet, width: 16},
pretrain_steps: 0, init_from: null}}``; ``data.a.labels: {classes: N}`` is required. Without
``semantic`` (the default) nothing of this exists and the method's step is what it always was."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import torch
import torch.nn.functional as F
from torch import nn

from cgx.plugins import frozen
from cgx.plugins.types import Components, Trainable

KEYS = ("weight", "network", "pretrain_steps", "init_from")
GROUP = "segmenter"
"""The segmenter's network group (its optimizer: ``optim.segmenter``)."""


@dataclass(frozen=True)
class SemanticSpec:
    """``method.semantic``, checked."""

    weight: float = 1.0
    """Each semantic term's weight in the generator loss."""
    network: Mapping[str, Any] = field(default_factory=lambda: {"name": "unet"})
    """The segmenter: a registered ``segmenter`` (``cgx plugins``) and its arguments."""
    pretrain_steps: int = 0
    """Steps in which only the segmenter trains, before the generators and discriminators start."""
    init_from: str | None = None
    """A file of the segmenter's weights (a state dict) to start from."""


def parse_semantic(value: Mapping[str, Any] | None) -> SemanticSpec | None:
    """``method.semantic`` as a SemanticSpec (None: off); ValueError naming the key for what does not fit."""
    if value is None:
        return None
    unknown = [k for k in value if k not in KEYS]
    if unknown:
        raise ValueError(f"semantic.{unknown[0]} is not a key of semantic; keys: {', '.join(KEYS)}")
    spec = SemanticSpec()
    weight = value.get("weight", spec.weight)
    if isinstance(weight, str):
        try:
            weight = float(weight)
        except ValueError:
            pass
    if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not weight > 0:
        raise ValueError(f"semantic.weight must be a number > 0, got {weight!r} (leave semantic out to turn it off)")
    network = value.get("network", spec.network)
    if isinstance(network, str):
        network = {"name": network}
    if not isinstance(network, Mapping) or not isinstance(network.get("name"), str):
        raise ValueError(f"semantic.network must be a segmenter's name or a section with name (e.g. "
                         f"{{name: unet, width: 16}}), got {network!r}")
    steps = value.get("pretrain_steps", spec.pretrain_steps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise ValueError(f"semantic.pretrain_steps must be an integer >= 0, got {steps!r}")
    init_from = value.get("init_from", spec.init_from)
    if init_from is not None and not isinstance(init_from, str):
        raise ValueError(f"semantic.init_from must be a path or null, got {init_from!r}")
    return SemanticSpec(float(weight), dict(network), steps, init_from)


class SegmenterGroup(nn.Module):
    """The ``segmenter`` group: S alone (the engine wraps each group once)."""

    def __init__(self, S: nn.Module) -> None:
        super().__init__()
        self.S = S

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.S(images)


def build_segmenter_group(spec: SemanticSpec, make: Components) -> SegmenterGroup:
    """S from ``spec.network`` for domain A's labels (and B's, which must have as many classes), its
    weights from ``spec.init_from`` where given and the networks start a run (``make.starts_run``: not
    for a resume, translate, eval or export, whose checkpoint's weights replace them)."""
    labels_a, labels_b = make.labels("A"), make.labels("B")
    if labels_a is None:
        raise ValueError("semantic consistency needs domain A's labels: set data.a.labels: {classes: N} (label maps "
                         "in {phase}A_labels/ beside {phase}A/, or label.png in the shards)")
    if labels_b is not None and labels_b.classes != labels_a.classes:
        raise ValueError(f"semantic consistency uses one segmenter for both domains, but data.a.labels.classes="
                         f"{labels_a.classes} and data.b.labels.classes={labels_b.classes}; give B the same classes "
                         f"or drop data.b.labels")
    S = make.segmenter(spec.network, labels_a.classes, key="method.semantic.network")
    if spec.init_from is not None and getattr(make, "starts_run", True):
        load_segmenter_weights(S, spec.init_from)
    return SegmenterGroup(S)


def load_segmenter_weights(S: nn.Module, path: str) -> None:
    """``path``'s state dict into S (``weights_only``: a file cannot run code); CheckpointError naming the
    file and the first key that does not fit."""
    from cgx.errors import CheckpointError
    from cgx.interop.init_from import first_misfit
    from cgx.untrusted import load_weights_file

    what = "method.semantic.init_from: segmenter weights"
    state = load_weights_file(Path(path).expanduser(), what=what, error=CheckpointError)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{what} {path} is not a state dict (names -> tensors; torch.save(S.state_dict()))")
    misfit = first_misfit(state, S)
    if misfit is not None:
        raise CheckpointError(f"{what} {path} does not fit method.semantic.network: {misfit}")
    S.load_state_dict(state)


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor, ignore_index: int) -> torch.Tensor:
    """Mean cross-entropy (fp32) over the pixels whose label is not ``ignore_index``; 0 (with a gradient
    path) where every pixel is ignored, where ``F.cross_entropy``'s mean would be NaN. No host sync."""
    total = F.cross_entropy(logits.float(), labels, ignore_index=ignore_index, reduction="sum")
    return total / (labels != ignore_index).sum().clamp(min=1)


class SemanticConsistency:
    """The semantic term for the generator phase and the segmenter's own phase, over the wrapped group.
    Its state (the segmenter steps taken, for ``pretrain_steps``) is part of the method step's."""

    def __init__(self, spec: SemanticSpec, segmenter: Trainable, ignore_a: int, ignore_b: int | None,
                 autocast: Callable) -> None:
        self.spec, self.segmenter, self.autocast = spec, segmenter, autocast
        self.ignore = {"A": ignore_a, "B": ignore_b}
        self.steps = 0

    @property
    def pretraining(self) -> bool:
        """Whether this step trains only the segmenter (the first ``pretrain_steps``)."""
        return self.steps < self.spec.pretrain_steps

    def generator_terms(self, fake_b: torch.Tensor, labels_a: torch.Tensor | None,
                        fake_a: torch.Tensor | None = None, labels_b: torch.Tensor | None = None) -> dict:
        """``G/semantic_AtoB`` = weight x CE(S(G(a)), labels_a), and ``G/semantic_BtoA`` for F(b) where B has
        labels (and ``fake_a`` is given), with S frozen, bare and in eval mode: the gradient reaches the fakes only."""
        pairs = [("G/semantic_AtoB", fake_b, labels_a, "A")]
        if fake_a is not None and labels_b is not None and self.ignore["B"] is not None:
            pairs.append(("G/semantic_BtoA", fake_a, labels_b, "B"))
        if labels_a is None:
            raise ValueError("semantic consistency: the step got no labels for domain A (data.a.labels)")
        fakes = torch.cat([p[1] for p in pairs])
        S = self.segmenter.module
        was_training = S.training
        S.eval()  # a fixed judge: batch-norm statistics neither used from nor updated by the fakes
        try:
            with frozen(S), self.autocast():
                logits = S(fakes).split([p[1].shape[0] for p in pairs])
        finally:
            S.train(was_training)
        return {tag: self.spec.weight * cross_entropy(lg, labels, self.ignore[d])
                for (tag, _, labels, d), lg in zip(pairs, logits)}

    def segmenter_phase(self, real_a: torch.Tensor, labels_a: torch.Tensor, real_b: torch.Tensor | None = None,
                        labels_b: torch.Tensor | None = None) -> dict:
        """Train S on the real images and their labels (A, and B where it has labels), in one call through
        the wrapper: ``S/A`` = CE(S(a), labels_a), ``S/B``."""
        pairs = [("S/A", real_a, labels_a, "A")]
        if real_b is not None and labels_b is not None and self.ignore["B"] is not None:
            pairs.append(("S/B", real_b, labels_b, "B"))
        with self.autocast():
            logits = self.segmenter(torch.cat([p[1] for p in pairs])).split([p[1].shape[0] for p in pairs])
        losses = {tag: cross_entropy(lg, labels, self.ignore[d]) for (tag, _, labels, d), lg in zip(pairs, logits)}
        self.segmenter.backward(sum(losses.values()))
        self.segmenter.step()
        self.steps += 1
        return {k: v.detach() for k, v in losses.items()}

    def state_dict(self) -> dict:
        return {"steps": self.steps}

    def load_state_dict(self, state: dict) -> None:
        self.steps = int(state["steps"])


def semantic_for(spec: SemanticSpec, segmenter: Trainable, make: Components, autocast: Callable) -> SemanticConsistency:
    """The step's SemanticConsistency over the wrapped ``segmenter`` group, with the domains' ignore indices."""
    labels_b = make.labels("B")
    return SemanticConsistency(spec, segmenter, make.labels("A").ignore_index,
                               None if labels_b is None else labels_b.ignore_index, autocast)
