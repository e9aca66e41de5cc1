"""A method's named network groups, as the engine holds them.

A method declares its groups (``Method.groups(make) -> {name: nn.Module}``); the engine builds them
with one seed, wraps each once with its own optimizer (``optim`` with ``optim.<group>`` over it) and
hands the wrapped groups, each a :class:`GroupTrainable`, to the method's step. A method of the first
form (``build_generators`` / ``build_discriminators``) is read through :class:`TwoGroups`. Nothing here
names a method; the one group name the engine knows is ``generators``, what inference loads."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from ..config import GROUP_NAME, Config, origin_of
from ..errors import ConfigError

INFERENCE_GROUP = "generators"
"""The group inference loads from a checkpoint and hands to ``Method.translators`` (``train.ema`` averages it)."""


class TwoGroups:
    """A method of the first form (``cgx.plugins.types.MethodV1``) as a :class:`~cgx.plugins.types.Method`
    with the groups ``generators`` and ``discriminators``, built in that order (the seeded initial weights are
    those the first form always had). Its other attributes (``paired``, ``uses_labels``, ...) read through."""

    def __init__(self, method: Any) -> None:
        self.method = method

    def groups(self, make) -> dict[str, nn.Module]:
        gens = self.method.build_generators(make)
        return {"generators": gens, "discriminators": self.method.build_discriminators(make)}

    def build_step(self, groups: Mapping[str, Any], make, autocast):
        return self.method.build_step(groups["generators"], groups["discriminators"], make, autocast)

    def translators(self, generators: nn.Module) -> dict[str, nn.Module]:
        return self.method.translators(generators)

    def __getattr__(self, name: str) -> Any:
        if name == "method":  # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        return getattr(self.method, name)


def as_groups_method(method: Any) -> Any:
    """``method`` as a method that declares its groups: itself if it does, else :class:`TwoGroups` of it."""
    return method if callable(getattr(method, "groups", None)) else TwoGroups(method)


def build_groups(cfg: Config, method: Any, make, where: str | None = None) -> dict[str, nn.Module]:
    """The method's network groups, bare, checked: a non-empty mapping of identifiers to ``nn.Module`` with a
    ``generators`` group, no parameter in two groups (two optimizers would update it). A value the method
    refuses (ValueError) or a group that does not fit is a ConfigError naming the recipe and ``method``."""
    from .components import method_call

    where = where or cfg.recipe or "<recipe>"
    groups = method_call(cfg, as_groups_method(method).groups, make, where=where)
    said = f"{where}: method: {cfg.method.name}: groups()"
    if not isinstance(groups, Mapping) or not groups:
        raise ConfigError(f"{said} returned {type(groups).__name__}; it must return a non-empty mapping of "
                          f"group name -> nn.Module (cgx.plugins.types.Method)")
    seen: dict[int, str] = {}
    for name, group in groups.items():
        if not isinstance(name, str) or not GROUP_NAME.match(name):
            raise ConfigError(f"{said}: group name {name!r} is not an identifier (letters, digits, _)")
        if not isinstance(group, nn.Module):
            raise ConfigError(f"{said}: group {name!r} is a {type(group).__name__}, not a torch.nn.Module")
        for p in group.parameters():
            if id(p) in seen and seen[id(p)] != name:
                raise ConfigError(f"{said}: a parameter is in the groups {seen[id(p)]!r} and {name!r}; each "
                                  f"parameter belongs to one group (one optimizer updates it)")
            seen[id(p)] = name
    if INFERENCE_GROUP not in groups:
        raise ConfigError(f"{said} has no {INFERENCE_GROUP!r} group (it has {', '.join(groups)}); the networks "
                          f"translators() picks from are the group named {INFERENCE_GROUP!r}")
    return dict(groups)


def build_inference_group(cfg: Config, method: Any, make, where: str | None = None) -> nn.Module:
    """The ``generators`` group alone, bare (what a checkpoint's weights load into for inference). A method of the
    first form builds only it; a method that declares its groups builds them all and the others are dropped."""
    from .components import method_call

    if not callable(getattr(method, "groups", None)):
        return method_call(cfg, method.build_generators, make, where=where)
    return build_groups(cfg, method, make, where)[INFERENCE_GROUP]


def check_optim_groups(cfg: Config, names: list[str], where: str | None = None) -> None:
    """Every ``optim.<group>`` section names one of the method's groups."""
    for group in cfg.optim.groups:
        if group not in names:
            raise ConfigError(f"{where or origin_of(cfg, f'optim.{group}')}: optim.{group}: the method "
                              f"({cfg.method.name}) has no network group {group!r}; its groups: {', '.join(names)}")


class GroupTrainable:
    """One wrapped network group as a method's step gets it (``cgx.plugins.types.Trainable``): the strategy's
    trainable (DDP or DeepSpeed) with the group's name and its update rhythm (``optim.<group>.update_every``).

    On a step where the group does not update (``updates`` False), calling it runs the bare group (no
    synchronisation across ranks, no DeepSpeed hooks), ``backward`` and ``step`` do nothing: the group gets
    no gradient and its optimizer state does not move. Which steps update depends on the global step only
    (``at_step``), so every rank and a resumed run agree."""

    def __init__(self, name: str, inner: Any, update_every: int = 1) -> None:
        self.name = name
        self.inner = inner
        self.update_every = update_every
        self.updates = True

    def at_step(self, step: int) -> None:
        """Before global step ``step`` (0-based: the steps done so far): whether this one updates the group."""
        self.updates = step % self.update_every == 0

    @property
    def module(self) -> nn.Module:
        return self.inner.module

    @property
    def optimizer(self) -> torch.optim.Optimizer:
        return self.inner.optimizer

    def __call__(self, *args, **kwargs):
        if self.updates:
            return self.inner(*args, **kwargs)
        return self.inner.forward_bare(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        if self.updates:
            self.inner.backward(loss)

    def step(self) -> None:
        if self.updates:
            self.inner.step()

    def state_dict(self) -> dict:
        return self.inner.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.inner.load_state_dict(state)

    def save_sharded(self, folder: Path) -> None:
        self.inner.save_sharded(folder)

    def load_sharded(self, folder: Path) -> None:
        self.inner.load_sharded(folder)

    def release(self) -> None:
        self.inner.release()

    def __getattr__(self, name: str) -> Any:  # the strategy's own extras (DeepSpeed's engine, ...)
        if name == "inner":
            raise AttributeError(name)
        return getattr(self.inner, name)
