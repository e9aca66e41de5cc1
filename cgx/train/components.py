"""Building the recipe's plugin components, after checking every section against its factory."""
from __future__ import annotations

from ..config import ComponentConfig, Config
from ..errors import ConfigError, PluginError
from ..plugins import Registry
from ..plugins.kinds import recipe_sections
from .networks import DiscriminatorPair, GeneratorPair


def component_sections(cfg: Config) -> dict[str, tuple[str, ComponentConfig]]:
    """recipe key -> (plugin kind, section), for every key a plugin kind declares."""
    out = {}
    for key, kind in recipe_sections().items():
        section = cfg
        for part in key.split("."):
            section = getattr(section, part)
        out[key] = (kind, section)
    return out


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


def create(cfg: Config, registry: Registry, key: str, where: str | None = None):
    """Build the component of recipe section ``key`` (``model.generator``, ``buffer`` ...); a plugin
    that refuses its arguments is a ConfigError naming ``where`` (default: the recipe file) and the key."""
    kind, section = component_sections(cfg)[key]
    try:
        return registry.create(kind, section.name, **section.args)
    except PluginError as e:
        raise ConfigError(f"{where or cfg.recipe or '<recipe>'}: {key}: {e}") from e.__cause__


def build_generators(cfg: Config, registry: Registry, where: str | None = None) -> GeneratorPair:
    """G: A -> B and F: B -> A from the recipe's ``model.generator`` section."""
    return GeneratorPair(create(cfg, registry, "model.generator", where), create(cfg, registry, "model.generator", where))


def build_networks(cfg: Config, registry: Registry) -> tuple[GeneratorPair, DiscriminatorPair]:
    """Build both pairs from the recipe's plugin sections (each component sees only its section)."""
    gens = build_generators(cfg, registry)  # first: the seeded initial weights depend on the order
    discs = DiscriminatorPair(create(cfg, registry, "model.discriminator"),
                              create(cfg, registry, "model.discriminator"))
    return gens, discs


def build_adversarial_loss(cfg: Config, registry: Registry):
    return create(cfg, registry, "loss.gan")


def build_reconstruction_loss(cfg: Config, registry: Registry):
    return create(cfg, registry, "loss.cycle")


def build_buffer(cfg: Config, registry: Registry):
    return create(cfg, registry, "buffer")
