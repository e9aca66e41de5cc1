"""Every registered buffer, logger and augmentation through the public checks (``cgx.testing``), as an outside
package checks its own; the networks' and losses' are in test_components.py and test_losses.py, the
methods' in tests/methods/test_method_contract.py."""
from __future__ import annotations

import pytest

import cgx.plugins
from cgx.testing import ContractError, check_augment, check_buffer, check_logger

LOCAL_LOGGERS = [n for n in cgx.plugins.available("logger") if n not in ("wandb", "mlflow")]
"""wandb and mlflow start a client each (seconds, optional packages): their own tests cover them."""


@pytest.mark.parametrize("name", cgx.plugins.available("buffer"))
def test_buffer_keeps_the_contract(name):
    check_buffer(lambda: cgx.plugins.create("buffer", name, **({"size": 3} if name == "image_pool" else {})))


@pytest.mark.parametrize("name", LOCAL_LOGGERS)
def test_logger_keeps_the_contract(name, tmp_path):
    check_logger(lambda: cgx.plugins.create("logger", name), tmp_path)


@pytest.mark.parametrize("name", cgx.plugins.available("augment"))
def test_augment_keeps_the_contract(name):
    check_augment(lambda: cgx.plugins.create("augment", name))


class ForgetfulPool:
    """A pool whose state does not carry what it holds: resume would differ."""

    def __init__(self) -> None:
        self.images = []

    def query(self, images):
        import torch

        self.images += list(images)
        pick = torch.randint(0, len(self.images), (images.shape[0],))
        return torch.stack([self.images[i] for i in pick])

    def state_dict(self) -> dict:
        return {"n": len(self.images)}

    def load_state_dict(self, state: dict) -> None:
        pass


def test_the_buffer_check_catches_a_state_that_does_not_resume():
    with pytest.raises(ContractError, match="answers a query differently"):
        check_buffer(ForgetfulPool)


def test_the_logger_check_catches_a_factory_that_writes(tmp_path):
    class Eager:
        def __init__(self):
            (tmp_path / "run").mkdir()

        open = recipe = scalars = image = event = close = lambda self, *a: None

    with pytest.raises(ContractError, match="before open"):
        check_logger(Eager, tmp_path)


def test_the_discriminator_check_catches_undeclared_shapes():
    from torch import nn

    class Liar(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 1, 4, 2, 1)

        def forward(self, x):
            return self.conv(x)

        def output_shapes(self, height, width):
            return [(1, height // 4, width // 4)]  # the conv halves, it does not quarter

    with pytest.raises(ContractError, match="output_shapes"):
        from cgx.testing import check_discriminator

        check_discriminator(Liar)
