"""The hook specifications a cgx plugin implements (pluggy project name ``cgx``): one per plugin
kind, made from the kind's record (``cgx.plugins.kinds.KINDS``), so a kind and its hook cannot drift.

Each hook receives a ``register(name, factory)`` callback. ``factory(**kwargs)`` builds the
component from its recipe section (every key but ``name``); its keyword arguments, their
defaults and annotations are what a recipe may set. Registering a name twice is an error.
What each kind must be is defined, as Protocols, in ``cgx.plugins.types``.

    cgx_register_methods(register)                cgx_register_generators(register)
    cgx_register_discriminators(register)
    cgx_register_adversarial_losses(register)     cgx_register_reconstruction_losses(register)
    cgx_register_buffers(register)                cgx_register_loggers(register)
    cgx_register_augments(register)
"""
import pluggy

from .kinds import KINDS, Kind

hookspec = pluggy.HookspecMarker("cgx")
hookimpl = pluggy.HookimplMarker("cgx")


def _spec(kind: Kind):
    def spec(register):
        pass

    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__module__ = __name__
    keys = ", ".join(f"``{k}``" for k in kind.recipe_keys)
    many = " (a list: each item names one)" if kind.many else ""
    spec.__doc__ = (f"Register {kind.summary}: ``register(name, factory)``. Each factory builds a "
                    f"``cgx.plugins.types.{kind.protocol.__name__}``; recipe key {keys}{many}.")
    return hookspec(spec)


for _kind in KINDS.values():
    globals()[_kind.hook] = _spec(_kind)
del _kind
