"""Contract checks for cgx plugins, for any package's own tests (scikit-learn's ``check_estimator``
idea): cgx's tests of its built-ins call the same functions.

    import functools
    from cgx.testing import check_discriminator, check_method

    def test_my_discriminator():
        check_discriminator(functools.partial(build_my_disc, width=8))   # builds a new one per call

    def test_my_method(tmp_path):                                       # trains for real: seconds
        check_method({"name": "mymethod"}, tmp_path, plugins=[my_module])

Each ``check_*`` takes ``build``, a callable with no arguments returning a new component (your factory
with small arguments: the checks run on CPU), and raises ``ContractError`` (an AssertionError) saying
what broke. No file of cgx's checkout is needed: what a check needs (images, data, a recipe) it makes.
"""
from .augment import check_augment
from .failures import ContractError
from .losses import check_adversarial_loss, check_reconstruction_loss
from .method import check_method
from .networks import check_discriminator, check_generator
from .segmenters import check_segmenter
from .state import check_buffer, check_logger

__all__ = ["ContractError", "check_augment", "check_adversarial_loss", "check_buffer", "check_discriminator", "check_generator",
           "check_logger", "check_method", "check_reconstruction_loss", "check_segmenter"]
