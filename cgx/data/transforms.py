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


# --- one set of draws applied to several arrays (paired images, an image and its label map) -------------

def size_of(item) -> tuple[int, int]:
    """(width, height) of a PIL image, a (C, H, W) image tensor or an (H, W) label map (array or tensor)."""
    if isinstance(item, Image.Image):
        return item.size
    return int(item.shape[-1]), int(item.shape[-2])


def is_label_map(item) -> bool:
    """A class map (H, W) of integers (``cgx.data.label_maps``): resized nearest-neighbour, never scaled."""
    return isinstance(item, np.ndarray) or (isinstance(item, torch.Tensor) and not item.is_floating_point())


def resize_step(aug: Augment, item):
    """``aug``'s resize (before the crop) of one item, exactly as ``Augment`` does it to an image (bicubic);
    a label map nearest-neighbour (pixel centres, as PIL's NEAREST), so it stays classes."""
    w, h = size_of(item)
    if aug.preprocess == "resize_and_crop":
        size = (aug.load_size, aug.load_size)
    elif aug.preprocess == "scale_width_and_crop" and (w != aug.load_size or h < aug.crop_size):
        size = (aug.load_size, max(aug.crop_size, round(h * aug.load_size / w)))
    else:
        return item
    if isinstance(item, Image.Image):
        return item.resize(size, Image.BICUBIC)
    if is_label_map(item):
        return resize_labels(torch.as_tensor(item), size[1], size[0])
    return resize(item, size[1], size[0])


def resize_labels(labels: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Nearest-neighbour resize of an (H, W) integer class map (values up to 65535 are exact in float32)."""
    if tuple(labels.shape[-2:]) == (height, width):
        return labels
    y = torch.nn.functional.interpolate(labels[None, None].float(), size=(height, width), mode="nearest-exact")
    return y[0, 0].round_().long()


def augment_together(aug: Augment, items, gen: torch.Generator, what: str = "images") -> list[torch.Tensor]:
    """``aug`` applied to every item of ``items`` with ONE set of random draws (crop left, crop top, flip: the
    calls ``Augment`` makes for one image, in the same order), so that their pixels stay aligned: both images
    of a pair (``cgx.data.paired``), an image and its label map (``cgx.data.label_maps``). Images (PIL, or
    float (C, H, W)) come back as float tensors in [-1, 1], label maps as int64 (H, W). ``what`` names the
    items in the error for sizes that differ after the resize."""
    items = [resize_step(aug, x) for x in items]
    sizes = [size_of(x) for x in items]
    if len(set(sizes)) > 1:
        shown = " and ".join("x".join(map(str, s)) for s in sizes)
        raise DataError(f"the {what} are {shown} after data.preprocess={aug.preprocess}; they must be the same size")
    if aug.preprocess != "none":
        w, h = sizes[0]
        size = aug.crop_size
        if w < size or h < size:
            raise DataError(f"the images are {w}x{h}, smaller than data.crop_size={size} (data.preprocess=crop "
                            f"crops without resizing: use resize_and_crop, or a crop_size of at most {min(w, h)})")
        left = int(torch.randint(0, w - size + 1, (), generator=gen).item())  # as random_crop
        top = int(torch.randint(0, h - size + 1, (), generator=gen).item())
        items = [_crop(x, left, top, size) for x in items]
    flip = aug.flip and torch.rand((), generator=gen).item() < 0.5
    out = []
    for x in items:
        if isinstance(x, Image.Image):
            x = to_tensor(x)
        elif is_label_map(x):
            x = torch.as_tensor(x).long()
        out.append((x.flip(-1) if flip else x).contiguous())
    return out


def _crop(item, left: int, top: int, size: int):
    if isinstance(item, Image.Image):
        return item.crop((left, top, left + size, top + size))
    return item[..., top:top + size, left:left + size]


class LabelledAugment:
    """``Augment`` of an image and its label map, ``(image, labels) -> (x, y)``, with one set of draws."""

    def __init__(self, augment: Augment) -> None:
        self.augment = augment

    def __call__(self, sample: tuple, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = augment_together(self.augment, sample, gen, what="image and its label map")
        return x, y


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
