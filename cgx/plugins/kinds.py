"""The plugin kinds: one record each, from which the hook, the Protocol check, the nn.Module
requirement and the recipe keys all derive. Adding a kind is one entry in ``KINDS`` (and its
Protocol in ``cgx.plugins.types``).

    >>> KINDS["generator"].hook
    'cgx_register_generators'
    >>> [k for k in KINDS]            # iterating gives the kind names
    ['method', 'generator', 'discriminator', 'adversarial_loss', 'reconstruction_loss', 'buffer', 'logger', 'augment', 'segmenter']
"""
from __future__ import annotations

import types as _types
from dataclasses import dataclass
from typing import Any, Generic, Mapping, Protocol

from torch import nn

from ..choices import PLUGIN_KINDS

from .types import AdversarialLoss, Buffer, Discriminator, Generator, Logger, Method, MethodV1, ReconstructionLoss
from .types import Augment
from .types import Segmenter


@dataclass(frozen=True)
class Kind:
    name: str
    """What the registry and the errors call it: ``generator``."""
    hook: str
    """The pluggy hook a plugin implements to register components of this kind."""
    protocol: type
    """What a component of this kind must be (``cgx.plugins.types``); checked when it is built."""
    module: bool
    """Whether a component must also be a ``torch.nn.Module`` (networks: wrapped by DDP/DeepSpeed)."""
    recipe_keys: tuple[str, ...]
    """The recipe sections that select a component of this kind by name."""
    summary: str
    """One line for the hook's documentation."""
    alternatives: tuple[type, ...] = ()
    """Earlier forms of the Protocol still accepted (the method kind's ``MethodV1``): an object that fits
    one of them fits the kind."""
    many: bool = False
    """Whether each recipe key holds a list of components (``logging.backends: [tensorboard, jsonl]``),
    each item a name or a section with ``name``, addressed as ``logging.backends[1]``; otherwise it
    selects one."""
    off: str | None = None
    """A name that turns the recipe key off instead of naming a plugin (``augment: none``): nothing is built,
    so the run is exactly one without the key; no plugin of the kind may take that name."""
    in_method: bool = False
    """Whether the recipe key lies inside the method's own section (``method.semantic.network``): the
    method builds the component (``Components``), and checks its section when it is built."""

    def missing(self, obj: Any) -> list[str]:
        """What ``obj`` lacks to be a component of this kind (empty: it fits); what it lacks of the current
        form when it fits no form."""
        if any(not self._lacks(obj, form) for form in self.alternatives):
            return []
        return self._lacks(obj, self.protocol)

    def _lacks(self, obj: Any, protocol: type) -> list[str]:
        names = members(protocol)
        lacks = []
        if self.module and not isinstance(obj, nn.Module):
            lacks.append("to be a torch.nn.Module")
            names = [n for n in names if not hasattr(nn.Module, n)]
        methods = {n for n in members(protocol) if callable(getattr(protocol, n, None))}
        for name in names:
            value = getattr(obj, name, None)
            if value is None or (name != "__call__" and name in methods and not callable(value)):
                lacks.append(f"{name}()" if name in methods else name)
        return lacks


def _kinds(*records: Kind) -> Mapping[str, Kind]:
    names = tuple(k.name for k in records)
    if names != PLUGIN_KINDS:  # the CLI's torch-free copy of the names (cgx.choices)
        raise AssertionError(f"cgx.choices.PLUGIN_KINDS {PLUGIN_KINDS} differs from the kinds {names}")
    return _types.MappingProxyType({k.name: k for k in records})


KINDS: Mapping[str, Kind] = _kinds(
    Kind("method", "cgx_register_methods", Method, False, ("method",),
         "training method factories (what a step is: named network groups, phases, losses, which network "
         "translates which way)", alternatives=(MethodV1,)),
    Kind("generator", "cgx_register_generators", Generator, True, ("model.generator",),
         "generator factories (both G: A->B and F: B->A)"),
    Kind("discriminator", "cgx_register_discriminators", Discriminator, True, ("model.discriminator",),
         "discriminator factories (both D_A and D_B), ``output_shapes(height, width)`` included"),
    Kind("adversarial_loss", "cgx_register_adversarial_losses", AdversarialLoss, False, ("loss.gan",),
         "adversarial loss factories: ``generator_loss(fake_scores)`` and "
         "``discriminator_loss(real_scores, fake_scores, batch)``"),
    Kind("reconstruction_loss", "cgx_register_reconstruction_losses", ReconstructionLoss, False, ("loss.cycle",),
         "reconstruction loss factories (the cycle and identity terms): ``loss(output, target)``"),
    Kind("buffer", "cgx_register_buffers", Buffer, False, ("buffer",),
         "image-buffer factories: ``query(images)``, ``state_dict()``, ``load_state_dict(state)`` (optional, to "
         "carry a pool over to another world size: ``merge_states(states)``, ``load_share(pool, rank, world_size, seed)``)"),
    Kind("logger", "cgx_register_loggers", Logger, False, ("logging.backends",),
         "logger factories (where rank 0's scalars, image grids, recipe and checkpoint/best events go): "
         "``open(run)``, ``recipe(config)``, ``scalars(step, values)``, ``image(step, tag, grid)``, "
         "``event(step, name, fields)``, ``close()``", many=True),
    Kind("augment", "cgx_register_augments", Augment, False, ("augment",),
         "discriminator augmentation factories (applied by the engine to every image any discriminator sees): "
         "``__call__(images) -> images``; adaptive ones (``AdaptiveAugment``) also ``observe``, ``update``",
         off="none"),
    Kind("segmenter", "cgx_register_segmenters", Segmenter, True, ("method.semantic.network",),
         "segmentation network factories: images in [-1, 1] to class logits at their resolution (a method's "
         "semantic consistency term; ``cgx eval --segmenter``)", in_method=True),
)
"""Every plugin kind by name."""


def members(protocol: type) -> list[str]:
    """The methods and attributes a Protocol requires, in definition order."""
    names: list[str] = []
    for klass in reversed(protocol.__mro__):
        if klass in (object, Protocol, Generic) or not getattr(klass, "_is_protocol", False):
            continue
        for name in [*getattr(klass, "__annotations__", {}), *vars(klass)]:
            if (not name.startswith("_") or name == "__call__") and name not in names:
                names.append(name)
    return names


def recipe_sections() -> dict[str, str]:
    """Recipe key -> the kind of plugin it selects (``model.generator`` -> ``generator``)."""
    return {key: kind.name for kind in KINDS.values() for key in kind.recipe_keys if not kind.in_method}
