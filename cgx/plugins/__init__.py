"""Public plugin API.

    >>> from cgx import plugins
    >>> plugins.available("generator")
    ['resnet', 'unet']
    >>> g = plugins.create("generator", "resnet", n_blocks=6)

Kinds (``KINDS``, one record each in ``cgx.plugins.kinds``): method, generator, discriminator,
adversarial_loss, reconstruction_loss, buffer, logger, augment, segmenter; what each must be is in ``cgx.plugins.types``
(Protocols and the values they exchange, re-exported here); what a method's step needs besides its
networks is in ``cgx.plugins.helpers`` (also re-exported: ``frozen``, ``score_real_and_fake``,
``fp32``, ``split``). Contract checks for a plugin's own tests: ``cgx.testing``. Installed plugins (the built-ins included)
load from the ``cgx`` entry-point group on first use; ``CGX_LOAD_PLUGINS=a,b`` limits which.
"""
from __future__ import annotations

from typing import Any

from ..errors import PluginError
from .hookspecs import hookimpl
from .kinds import KINDS, Kind
from .registry import LOAD_ENV, Entry, Registry
from .types import AdaptiveAugment, Augment
from .types import (EVENTS, AdversarialLoss, Buffer, Components, Discriminator, DiscriminatorBatch, FeatureGenerator,
                    Generator, LogRun, Logger, Method, MethodStep, MethodV1, ReconstructionLoss, ResizableBuffer, Scores,
                    StepResult, Trainable)
from .types import Segmenter
from .helpers import as_list, fp32, frozen, mean_over, score_real_and_fake, set_requires_grad, split

__all__ = [
    "KINDS", "Kind", "LOAD_ENV", "Entry", "PluginError", "Registry", "hookimpl",
    "available", "create", "entries", "load_module", "default_registry",
    "AdaptiveAugment", "Augment",
    "AdversarialLoss", "Buffer", "Discriminator", "DiscriminatorBatch", "Generator", "LogRun", "Logger",
    "ReconstructionLoss", "ResizableBuffer", "Scores", "Segmenter",
    "EVENTS", "Components", "FeatureGenerator", "Method", "MethodStep", "MethodV1", "StepResult", "Trainable",
    "as_list", "fp32", "frozen", "mean_over", "score_real_and_fake", "set_requires_grad", "split",
]

_default: Registry | None = None


def default_registry() -> Registry:
    """The process-wide registry (created on first use)."""
    global _default
    if _default is None:
        _default = Registry()
    return _default


def create(kind: str, name: str, **kwargs: Any) -> Any:
    """Build the ``kind`` component registered as ``name`` with its keyword arguments."""
    return default_registry().create(kind, name, **kwargs)


def available(kind: str, pattern: str = "*") -> list[str]:
    """Registered names of ``kind``, optionally filtered by a wildcard pattern."""
    return default_registry().available(kind, pattern)


def entries(kind: str | None = None) -> list[Entry]:
    return default_registry().entries(kind)


def load_module(spec: str, base_dir=None) -> None:
    """Load an extra plugin module (importable name or .py path) into the default registry."""
    default_registry().load_module(spec, base_dir)
