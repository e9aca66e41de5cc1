"""The hook specifications a cgx plugin implements (pluggy project name ``cgx``).

Each hook receives a ``register(name, factory)`` callback. ``factory(**kwargs)`` builds the
component from its recipe section (every key but ``name``); its keyword arguments, their
defaults and annotations are what a recipe may set. Registering a name twice is an error.
"""
import pluggy

hookspec = pluggy.HookspecMarker("cgx")
hookimpl = pluggy.HookimplMarker("cgx")


@hookspec
def cgx_register_generators(register):
    """Register generator factories: ``register("resnet", build_resnet)``.

    A generator maps a (N, C, H, W) image in [-1, 1] to one of the same shape. It may set
    ``size_multiple`` and ``min_size`` (ints) so that ``cgx translate`` pads inputs to a multiple
    of it and at least that size."""


@hookspec
def cgx_register_discriminators(register):
    """Register discriminator factories. A discriminator maps images to a score tensor (or a
    list of score tensors for multi-output discriminators). It should declare
    ``output_shapes(height, width) -> [(channels, h, w), ...]``, one entry per output, which the
    test suite checks for every registered discriminator (the built-ins must have it)."""


@hookspec
def cgx_register_losses(register):
    """Register loss factories. Adversarial losses (recipe key ``loss.gan``) provide
    ``generator_loss(fake_scores)`` and ``discriminator_loss(real_scores, fake_scores, batch)``,
    where ``batch`` (``cgx.train.step.DiscriminatorBatch``) carries the discriminator and the
    real and fake images for losses that need them (a gradient penalty). Scores are a tensor or a
    list of tensors (multi-output discriminators). Reconstruction losses (``loss.cycle``) are
    called as ``loss(output, target)``."""


@hookspec
def cgx_register_buffers(register):
    """Register image-buffer factories. A buffer provides ``query(images) -> images`` (the
    history the discriminator sees), ``state_dict()`` and ``load_state_dict(state)``."""
