"""cgx eval's paired pixel scores (cgx.eval.paired.pixel_scores) against values worked out by hand."""
from __future__ import annotations

import math

import torch

from cgx.eval.paired import pixel_scores


def from_uint8(x: torch.Tensor) -> torch.Tensor:
    """uint8 levels -> the [-1, 1] tensor that cgx rounds back to exactly those levels."""
    return x.double() / 127.5 - 1


def test_psnr_and_l1_of_a_known_offset():
    torch.manual_seed(0)
    target = torch.randint(0, 240, (2, 3, 32, 32))
    fake = target + 10  # every pixel off by 10 levels: MSE (10/255)^2
    scores = pixel_scores(from_uint8(fake), from_uint8(target))
    assert torch.allclose(scores[:, 0], torch.full((2,), 10 / 255, dtype=torch.float64), atol=1e-12)
    assert torch.allclose(scores[:, 1], torch.full((2,), 20 * math.log10(25.5), dtype=torch.float64), atol=1e-9)


def test_ssim_of_flat_images_is_the_luminance_term():
    """Two flat images: no variance, so SSIM = (2 mu_x mu_y + C1) / (mu_x^2 + mu_y^2 + C1), C1 = (0.01 L)^2."""
    x, y = 100 / 255, 150 / 255
    fake = torch.full((1, 3, 32, 32), 100)
    target = torch.full((1, 3, 32, 32), 150)
    c1 = 0.01 ** 2
    expected = (2 * x * y + c1) / (x * x + y * y + c1)
    assert abs(pixel_scores(from_uint8(fake), from_uint8(target))[0, 2].item() - expected) < 1e-6


def test_ssim_of_an_image_with_itself_is_one_and_of_its_negative_far_below():
    torch.manual_seed(1)
    image = torch.randint(0, 256, (1, 3, 32, 32))
    assert abs(pixel_scores(from_uint8(image), from_uint8(image))[0, 2].item() - 1) < 1e-9
    assert pixel_scores(from_uint8(255 - image), from_uint8(image))[0, 2].item() < 0
