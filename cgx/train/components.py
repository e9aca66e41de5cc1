"""Building the recipe's plugin components, after checking every section against its factory."""
from __future__ import annotations

from ..channels import channel_args
from ..config import ComponentConfig, Config
from ..errors import ConfigError, PluginError
from ..plugins import Registry
from .networks import DiscriminatorPair, GeneratorPair


def component_sections(cfg: Config) -> dict[str, tuple[str, ComponentConfig]]:
    """recipe key -> (plugin kind, section)."""
    return {
        "model.generator": ("generator", cfg.model.generator),
        "model.discriminator": ("discriminator", cfg.model.discriminator),
        "loss.gan": ("adversarial_loss", cfg.loss.gan),
        "loss.cycle": ("reconstruction_loss", cfg.loss.cycle),
        "buffer": ("buffer", cfg.buffer),
    }


def check_components(cfg: Config, registry: Registry) -> None:
    """Every plugin a recipe names exists and accepts the arguments given, before any work; the
    arguments are coerced in place (``2e-2`` read as a string becomes a float)."""
    where = cfg.recipe or "<recipe>"
    for key, (kind, section) in component_sections(cfg).items():
        try:
            section.args = registry.check_kwargs(kind, section.name, section.args)
        except PluginError as e:
            raise ConfigError(f"{where}: {key}: {e}") from None


def load_recipe_plugins(cfg: Config, registry: Registry) -> None:
    """Load the extra plugin modules a recipe names (paths relative to the recipe's folder)."""
    from pathlib import Path

    base = Path(cfg.recipe).parent if cfg.recipe else None
    for spec in cfg.plugins:
        registry.load_module(spec, base)


def create(cfg: Config, registry: Registry, key: str, **extra):
    """Build the component of recipe section ``key`` (``model.generator``, ``buffer`` ...), with ``extra``
    arguments over the section's; a plugin that refuses its arguments is a ConfigError naming the recipe
    file and the key."""
    kind, section = component_sections(cfg)[key]
    try:
        return registry.create(kind, section.name, **{**section.args, **extra})
    except PluginError as e:
        raise ConfigError(f"{cfg.recipe or '<recipe>'}: {key}: {e}") from e.__cause__


def build_networks(cfg: Config, registry: Registry) -> tuple[GeneratorPair, DiscriminatorPair]:
    """Build both pairs from the recipe's plugin sections (each component sees only its section)."""
    gens = GeneratorPair(create(cfg, registry, "model.generator", **channel_args(cfg, "G")),
                         create(cfg, registry, "model.generator", **channel_args(cfg, "F")))
    discs = DiscriminatorPair(create(cfg, registry, "model.discriminator", **channel_args(cfg, "D_A")),
                              create(cfg, registry, "model.discriminator", **channel_args(cfg, "D_B")))
    return gens, discs


def build_adversarial_loss(cfg: Config, registry: Registry):
    return create(cfg, registry, "loss.gan")


def build_reconstruction_loss(cfg: Config, registry: Registry):
    return create(cfg, registry, "loss.cycle")


def build_buffer(cfg: Config, registry: Registry):
    return create(cfg, registry, "buffer")
