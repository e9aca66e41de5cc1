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

    def __call__(self, image: Image.Image | torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """A PIL 8-bit RGB image (the default domain spec: today's path, bit for bit) or a float tensor
        (C, H, W) in [-1, 1] of any channel count and depth (``cgx.data.decode``): the same random draws
        in the same order, so a position is cropped and flipped alike either way."""
        if isinstance(image, torch.Tensor):
            return self.on_tensor(image, gen)
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


    def on_tensor(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """Resize (bicubic, antialiased as PIL's, in float: no rounding to 8 bits), random crop, flip."""
        h, w = x.shape[-2:]
        if self.preprocess == "resize_and_crop":
            x = resize(x, self.load_size, self.load_size)
        elif self.preprocess == "scale_width_and_crop":
            if w != self.load_size or h < self.crop_size:
                x = resize(x, max(self.crop_size, round(h * self.load_size / w)), self.load_size)
        if self.preprocess != "none":
            x = random_crop_tensor(x, self.crop_size, gen)
        if self.flip and torch.rand((), generator=gen).item() < 0.5:
            x = x.flip(-1)
        return x.contiguous()


def resize(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bicubic resize of a float (C, H, W) image in [-1, 1] (antialiased when shrinking, as PIL's),
    clamped back to [-1, 1] (bicubic overshoots at edges)."""
    if tuple(x.shape[-2:]) == (height, width):
        return x
    y = torch.nn.functional.interpolate(x.unsqueeze(0), size=(height, width), mode="bicubic",
                                        align_corners=False, antialias=True)
    return y.squeeze(0).clamp_(-1, 1)


def random_crop_tensor(x: torch.Tensor, size: int, gen: torch.Generator) -> torch.Tensor:
    h, w = x.shape[-2:]
    if w < size or h < size:
        raise DataError(f"the image is {w}x{h}, smaller than data.crop_size={size} (data.preprocess=crop "
                        f"crops without resizing: use resize_and_crop, or a crop_size of at most {min(w, h)})")
    left = int(torch.randint(0, w - size + 1, (), generator=gen).item())
    top = int(torch.randint(0, h - size + 1, (), generator=gen).item())
    return x[..., top:top + size, left:left + size]


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
