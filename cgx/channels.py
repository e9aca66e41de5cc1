"""The channel counts of the four networks, from the data's image specs (``data.a``, ``data.b``).

G (A -> B) takes A's channels and produces B's; F (B -> A) the reverse; D_A judges A's images, D_B
B's. One recipe section builds both networks of a pair, so its own ``in_channels``/``out_channels``
(as ``cgx import`` writes them, or a user sets them) describe G and D_A; where they contradict the data
the recipe is refused, naming both keys. For 8-bit RGB on both sides nothing is passed, so a plugin
without channel arguments works as it always has."""
from __future__ import annotations

from .config import Config
from .errors import ConfigError

ROLES = ("G", "F", "D_A", "D_B")


def network_channels(cfg: Config, role: str) -> dict[str, int]:
    """The channel arguments network ``role`` (G, F, D_A, D_B) is built with, by the data alone."""
    a, b = cfg.data.a.channels, cfg.data.b.channels
    return {"G": {"in_channels": a, "out_channels": b}, "F": {"in_channels": b, "out_channels": a},
            "D_A": {"in_channels": a}, "D_B": {"in_channels": b}}[role]


def check_channels(cfg: Config) -> None:
    """ConfigError naming the key when ``model.generator`` / ``model.discriminator`` set a channel count
    the data contradicts."""
    where = cfg.recipe or "<recipe>"
    a, b = cfg.data.a.channels, cfg.data.b.channels
    wanted = {("model.generator", "in_channels"): (a, "data.a.channels"),
              ("model.generator", "out_channels"): (b, "data.b.channels")}
    args = {"model.generator": cfg.model.generator.args, "model.discriminator": cfg.model.discriminator.args}
    for (section, name), (value, source) in wanted.items():
        given = args[section].get(name)
        if given is not None and given != value:
            raise ConfigError(f"{where}: {section}.{name}={given} contradicts {source}={value} (G: A->B takes "
                              f"data.a.channels and produces data.b.channels; remove {section}.{name}, the networks "
                              f"take their channels from data.a and data.b)")
    given = args["model.discriminator"].get("in_channels")
    if given is not None and (given != a or given != b):
        raise ConfigError(f"{where}: model.discriminator.in_channels={given} contradicts data.a.channels={a} / "
                          f"data.b.channels={b} (D_A judges A's images, D_B B's; remove "
                          f"model.discriminator.in_channels, the discriminators take their channels from the data)")


def channel_args(cfg: Config, role: str) -> dict[str, int]:
    """The extra keyword arguments network ``role`` is created with: nothing for 8-bit RGB on both sides
    (today's networks, any plugin), else its channel counts. Checks the recipe first (``check_channels``)."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    check_channels(cfg)
    if cfg.data.a.channels == 3 and cfg.data.b.channels == 3:
        return {}
    return network_channels(cfg, role)
