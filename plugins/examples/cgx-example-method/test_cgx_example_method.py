"""The example method's own tests (``pytest plugins/examples/cgx-example-method`` after installing it, or
with its folder on PYTHONPATH): its blur, and cgx's contract for a method (cgx.testing.check_method:
4 tiny training steps for real, exact resume, translate both ways)."""
import torch

import cgx_example_method
from cgx.testing import check_method
from cgx_example_method import blur, build_blurcycle


def test_blur_keeps_shape_and_constants():
    x = torch.full((1, 3, 9, 9), 0.25)
    assert torch.allclose(blur(x, 5), x) and blur(torch.rand(2, 3, 8, 8), 4).shape == (2, 3, 8, 8)
    assert build_blurcycle(blur=3).blur == 3


def test_keeps_the_method_contract(tmp_path):
    check_method({"name": "blurcycle", "cycle_weight": 10.0, "blur": 3}, tmp_path, plugins=[cgx_example_method])
