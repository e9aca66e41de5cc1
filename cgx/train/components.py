"""Building the recipe's plugin components, after checking every section against its factory.

The method (``method``) builds its networks and step from ``RecipeComponents``: each call makes a
new component from the recipe's section for it, so a method never sees the rest of the recipe."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from torch import nn

from ..channels import check_channels
from ..config import ComponentConfig, Config, origin_of
from ..errors import ConfigError, PluginError
from ..plugins import Registry
from ..plugins.kinds import KINDS, recipe_sections
from ..plugins.types import Logger, Method
from . import augment as augmentation


def component_sections(cfg: Config) -> dict[str, tuple[str, ComponentConfig]]:
    """recipe key -> (plugin kind, section), for every key a plugin kind declares; a key that holds a
    list (``logging.backends``) gives one entry per item, ``logging.backends[0]`` ...; a key set to its kind's
    ``off`` name (``augment: none``) gives none."""
    out = {}
    for key, kind in recipe_sections().items():
        section = _section(cfg, key)
        if KINDS[kind].many:
            out.update({f"{key}[{i}]": (kind, item) for i, item in enumerate(section)})
        elif section.name == KINDS[kind].off:
            continue  # (augment: none) nothing to build
        else:
            out[key] = (kind, section)
    return out


def _section(cfg: Config, key: str):
    section = cfg
    for part in key.split("."):
        section = getattr(section, part)
    return section


def check_components(cfg: Config, registry: Registry) -> None:
    """Every plugin a recipe names exists and accepts the arguments given, before any work; the
    arguments are coerced in place (``2e-2`` read as a string becomes a float); a key turned off
    (``augment: none``) takes no arguments."""
    for key, kind in recipe_sections().items():
        section = _section(cfg, key)
        off = KINDS[kind].off
        if not KINDS[kind].many and section.name == off and section.args:
            raise ConfigError(f"{origin_of(cfg, key)}: {key}: {key}={off} is off and takes no arguments, got "
                              f"{', '.join(f'{key}.{a}' for a in section.args)}; name the plugin they are for "
                              f"({key}.name=..., `cgx plugins` lists them)")
    for key, (kind, section) in component_sections(cfg).items():
        try:
            section.args = registry.check_kwargs(kind, section.name, section.args)
        except PluginError as e:
            raise ConfigError(f"{origin_of(cfg, key)}: {key}: {e}") from None


def load_recipe_plugins(cfg: Config, registry: Registry) -> None:
    """Load the extra plugin modules a recipe names (paths relative to the recipe's folder). Training
    only: a checkpoint's recipe never loads code (cgx.infer)."""
    base = Path(cfg.recipe).parent if cfg.recipe else None
    for spec in cfg.plugins:
        registry.load_module(spec, base)


def create(cfg: Config, registry: Registry, key: str, where: str | None = None, overrides: dict | None = None,
           data: dict | None = None):
    """Build the component of recipe section ``key`` (``model.generator``, ``buffer`` ...); a plugin
    that refuses its arguments is a ConfigError naming ``where`` (default: the recipe file) and the key.
    ``data``: arguments the data decides (channel counts, checked against the recipe by
    ``cgx.channels.check_channels``); ``overrides``: arguments the method fixes, which the recipe may
    not set to something else."""
    kind, section = component_sections(cfg)[key]
    where = where or origin_of(cfg, key)
    args = {**section.args, **(data or {})}
    for name, value in (overrides or {}).items():
        if name in args and args[name] != value:
            raise ConfigError(f"{where}: {key}.{name}={args[name]!r}, but the method ({cfg.method.name}) "
                              f"needs {value!r} there; remove {key}.{name} from the recipe")
        args[name] = value
    try:
        return registry.create(kind, section.name, **args)
    except PluginError as e:
        raise ConfigError(f"{where}: {key}: {e}") from e.__cause__


class RecipeComponents:
    """``cgx.plugins.types.Components`` over a recipe: what a method builds its parts from. Networks get
    their channel counts from the data (``data.a``, ``data.b``): a generator from ``source`` to
    ``target`` takes the source domain's channels and produces the target's, a discriminator judges its
    ``domain``'s; for 8-bit RGB on both sides nothing is passed (any plugin works as it always has)."""

    def __init__(self, cfg: Config, registry: Registry, where: str | None = None, starts_run: bool = False) -> None:
        self.cfg, self.registry, self.where = cfg, registry, where
        self.starts_run = starts_run
        """True only where the networks built here start a training run at step 0 (``cgx.plugins.types.Components``):
        inference, export, eval and a resume load a checkpoint's weights over them."""
        self.generators: list = []
        """Every generator built so far (what train.activation_checkpointing applies to)."""
        self._augment: list = []
        self.buffers: list = []
        """Every image buffer built so far (what a resume on another world size redistributes)."""
        check_channels(cfg)

    @property
    def augment(self):
        """The recipe's discriminator augmentation (``augment``), built once and shared by every discriminator
        and adversarial loss built here; None when it is off (``augment: none``, the default)."""
        if not self._augment:
            on = "augment" in component_sections(self.cfg)
            self._augment.append(create(self.cfg, self.registry, "augment", self.where) if on else None)
        return self._augment[0]

    def channels(self, domain: str) -> int:
        """The channel count of domain ``A`` or ``B`` (``data.a.channels``, ``data.b.channels``)."""
        return {"A": self.cfg.data.a, "B": self.cfg.data.b}[domain].channels

    def _create(self, key: str, overrides: dict | None = None, data: dict | None = None) -> Any:
        rgb = self.channels("A") == 3 and self.channels("B") == 3
        return create(self.cfg, self.registry, key, self.where, overrides, None if rgb else data)

    def generator(self, source: str = "A", target: str = "B", **overrides: Any):
        data = {"in_channels": self.channels(source), "out_channels": self.channels(target)}
        net = self._create("model.generator", overrides, data)
        self.generators.append(net)
        return net

    def discriminator(self, domain: str = "A", **overrides: Any):
        net = self._create("model.discriminator", overrides, {"in_channels": self.channels(domain)})
        return net if self.augment is None else augmentation.install(net, self.augment)

    def adversarial_loss(self):
        loss = self._create("loss.gan")
        return augmentation.ObservedLoss(loss, self.augment) if augmentation.adaptive(self.augment) else loss

    def reconstruction_loss(self):
        return self._create("loss.cycle")

    def buffer(self):
        buffer = self._create("buffer")
        self.buffers.append(buffer)
        return buffer

    def labels(self, domain: str):
        """Domain ``A``'s or ``B``'s label spec (``data.a.labels``: ``classes``, ``ignore_index``), or None."""
        return getattr({"A": self.cfg.data.a, "B": self.cfg.data.b}[domain], "labels", None)

    def segmenter(self, section: Mapping[str, Any], classes: int, domain: str = "A", key: str = "segmenter"):
        """A segmenter from a section the method holds (``{"name": "unet", "width": 16}``, the recipe's
        ``key``), for ``domain``'s channels and ``classes`` classes (which the section may not set otherwise)."""
        args = {k: v for k, v in section.items() if k != "name"}
        where = self.where or self.cfg.recipe or "<recipe>"
        fixed = {"in_channels": self.channels(domain), "classes": classes}
        for name, value in fixed.items():
            if name in args and args[name] != value:
                raise ConfigError(f"{where}: {key}.{name}={args[name]!r}, but the data gives {value!r} "
                                  f"(data.{domain.lower()}); remove {key}.{name} from the recipe")
        try:
            args = self.registry.check_kwargs("segmenter", section["name"], {**args, **fixed})
            return self.registry.create("segmenter", section["name"], **args)
        except PluginError as e:
            raise ConfigError(f"{where}: {key}: {e}") from e.__cause__


def build_loggers(cfg: Config, registry: Registry) -> list[tuple[str, Logger]]:
    """The recipe's loggers (``logging.backends``), built but not opened: (name, logger) in recipe order.
    A missing package or a refused argument is a ConfigError naming ``logging.backends[i]``."""
    return [(section.name, create(cfg, registry, key))
            for key, (kind, section) in component_sections(cfg).items() if kind == "logger"]


def build_method(cfg: Config, registry: Registry, where: str | None = None) -> Method:
    return create(cfg, registry, "method", where)


def check_data_mode(cfg: Config, method: Method, where: str | None = None) -> bool:
    """The data mode a method asks for (``Method.paired``) against the recipe's ``data.paired``: a method
    that learns from pairs refuses unpaired data (ConfigError); one that does not trains on paired data as
    two domains (the pairs' images, their correspondence unused). Returns whether the pairs go unused."""
    wants = getattr(method, "paired", False) is True
    if wants and not cfg.data.paired:
        raise ConfigError(f"{where or cfg.recipe or '<recipe>'}: method: {cfg.method.name} learns from pairs, but "
                          f"data.paired=false; set data.paired=true with aligned images ({cfg.data.root}/"
                          f"{cfg.data.phase}/ of A | B images; `cgx demo-data --paired` writes some) or paired shards "
                          f"(data.shards from `cgx shards --paired`)")
    return cfg.data.paired and not wants


def method_call(cfg: Config, fn, *args, where: str | None = None):
    """``fn(*args)``, a method's build call: a value it refuses (ValueError: a weight that does not fit
    the data) is a ConfigError naming the recipe and ``method``."""
    try:
        return fn(*args)
    except ValueError as e:
        raise ConfigError(f"{where or cfg.recipe or '<recipe>'}: method: {cfg.method.name}: {e}") from e


def build_generators(cfg: Config, registry: Registry, where: str | None = None) -> nn.Module:
    """The method's generator group, bare (also what inference loads a checkpoint's weights into)."""
    from .groups import build_inference_group

    method = build_method(cfg, registry, where)
    return build_inference_group(cfg, method, RecipeComponents(cfg, registry, where), where=where)


def build_networks(cfg: Config, registry: Registry) -> dict[str, nn.Module]:
    """The method's network groups by name, bare, in its order (the seeded initial weights depend on it)."""
    from .groups import build_groups

    return build_groups(cfg, build_method(cfg, registry), RecipeComponents(cfg, registry))
