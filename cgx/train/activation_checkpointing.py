"""``train.activation_checkpointing``: the engine's side is one call after the networks are built."""
from __future__ import annotations

from typing import Iterable

from torch import nn

from ..errors import ConfigError


def enable_activation_checkpointing(generators: Iterable[nn.Module], cfg) -> None:
    """When ``cfg.train.activation_checkpointing`` is on, ask every generator (bare, before or after
    wrapping) to recompute its activations in backward; a ConfigError naming the plugin for a generator
    that does not offer it (``enable_activation_checkpointing()``, see ``cgx.plugins.types.Generator``)."""
    if not cfg.train.activation_checkpointing:
        return
    for net in generators:
        enable = getattr(net, "enable_activation_checkpointing", None)
        if not callable(enable):
            raise ConfigError(
                f"{cfg.recipe or '<recipe>'}: train.activation_checkpointing=true, but generator plugin "
                f"{cfg.model.generator.name!r} ({type(net).__name__}) does not support it (no "
                f"enable_activation_checkpointing() method); set train.activation_checkpointing=false")
        enable()
