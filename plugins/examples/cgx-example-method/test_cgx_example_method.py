"""The example method's own unit test (run from this folder after installing): blur keeps the size."""
import torch

from cgx_example_method import blur, build_blurcycle


def test_blur_keeps_shape_and_constants():
    x = torch.full((1, 3, 9, 9), 0.25)
    assert torch.allclose(blur(x, 5), x) and blur(torch.rand(2, 3, 8, 8), 4).shape == (2, 3, 8, 8)
    assert build_blurcycle(blur=3).blur == 3
