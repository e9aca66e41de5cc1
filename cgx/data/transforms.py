"""The authors' augmentation: resize (bicubic), random crop, random flip, scale to [-1, 1].

Randomness comes from an explicit ``torch.Generator`` so that the same sample at the same
position of the same epoch is augmented the same way wherever it is loaded (any rank, any
worker, before or after a resume)."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from ..errors import DataError


@dataclass
class Augment:
    preprocess: str = "resize_and_crop"  # resize_and_crop | scale_width_and_crop | crop | none
    load_size: int = 286
    crop_size: int = 256
    flip: bool = True

    def __call__(self, image: Image.Image, gen: torch.Generator) -> torch.Tensor:
        if self.preprocess == "resize_and_crop":
            image = image.resize((self.load_size, self.load_size), Image.BICUBIC)
        elif self.preprocess == "scale_width_and_crop":
            w, h = image.size
            if w != self.load_size or h < self.crop_size:
                new_h = max(self.crop_size, round(h * self.load_size / w))
                image = image.resize((self.load_size, new_h), Image.BICUBIC)
        if self.preprocess != "none":
            image = random_crop(image, self.crop_size, gen)
        x = to_tensor(image)
        if self.flip and torch.rand((), generator=gen).item() < 0.5:
            x = x.flip(-1)
        return x


def random_crop(image: Image.Image, size: int, gen: torch.Generator) -> Image.Image:
    w, h = image.size
    if w < size or h < size:
        raise DataError(f"the image is {w}x{h}, smaller than data.crop_size={size} (data.preprocess=crop "
                        f"crops without resizing: use resize_and_crop, or a crop_size of at most {min(w, h)})")
    x = int(torch.randint(0, w - size + 1, (), generator=gen).item())
    y = int(torch.randint(0, h - size + 1, (), generator=gen).item())
    return image.crop((x, y, x + size, y + size))


def to_tensor(image: Image.Image) -> torch.Tensor:
    """PIL RGB -> float (3, H, W) in [-1, 1]."""
    arr = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)
    return arr.float().div_(127.5).sub_(1.0)


def to_image(x: torch.Tensor) -> Image.Image:
    """float (3, H, W) in [-1, 1] -> PIL RGB."""
    arr = x.detach().float().clamp(-1, 1).add_(1).mul_(127.5).round_().byte().permute(1, 2, 0).cpu().numpy()
    return Image.fromarray(arr)
