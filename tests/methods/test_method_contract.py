"""The built-in methods through the public method check (``cgx.testing.check_method``), as an outside
method package checks its own: 4 tiny steps, exact resume from step 2, translate through the run.
One unpaired two-direction method and one paired one-direction method."""
from __future__ import annotations

import pytest

from cgx.testing import check_method

pytestmark = pytest.mark.slow  # trains for real


def test_cyclegan_keeps_the_method_contract(tmp_path):
    check_method({"name": "cyclegan", "identity_weight": 0.5}, tmp_path)


def test_pix2pix_keeps_the_method_contract(tmp_path):
    # batch norm and dropout, the authors' pix2pix: dropout draws from the global RNG that resume restores
    check_method({"name": "pix2pix", "direction": "BtoA"}, tmp_path,
                 recipe={"model": {"generator": {"name": "unet", "ngf": 4, "num_downs": 5, "norm": "batch",
                                                 "dropout": True}}})
