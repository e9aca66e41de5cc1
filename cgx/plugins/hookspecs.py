"""The hook specifications a cgx plugin implements (pluggy project name ``cgx``).

Each hook receives a ``register(name, factory)`` callback. ``factory(**kwargs)`` builds the
component from its recipe section (every key but ``name``); its keyword arguments, their
defaults and annotations are what a recipe may set. Registering a name twice is an error.
What each kind must be is defined, as Protocols, in ``cgx.plugins.types``.
"""
import pluggy

hookspec = pluggy.HookspecMarker("cgx")
hookimpl = pluggy.HookimplMarker("cgx")


@hookspec
def cgx_register_generators(register):
    """Register generator factories: ``register("resnet", build_resnet)``. Each builds a
    ``cgx.plugins.types.Generator``."""


@hookspec
def cgx_register_discriminators(register):
    """Register discriminator factories. Each builds a ``cgx.plugins.types.Discriminator``,
    ``output_shapes(height, width)`` included."""


@hookspec
def cgx_register_adversarial_losses(register):
    """Register adversarial loss factories (recipe key ``loss.gan``). Each builds a
    ``cgx.plugins.types.AdversarialLoss``: ``generator_loss(fake_scores)`` and
    ``discriminator_loss(real_scores, fake_scores, batch)``."""


@hookspec
def cgx_register_reconstruction_losses(register):
    """Register reconstruction loss factories (recipe key ``loss.cycle``, used by the cycle and
    identity terms). Each builds a ``cgx.plugins.types.ReconstructionLoss``: ``loss(output, target)``."""


@hookspec
def cgx_register_buffers(register):
    """Register image-buffer factories. Each builds a ``cgx.plugins.types.Buffer``: ``query(images)``,
    ``state_dict()``, ``load_state_dict(state)``."""
