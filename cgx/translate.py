"""``cgx translate``: a folder of images through one trained generator, batched, any image size."""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from .data.images import list_images, load_rgb
from .data.transforms import to_image, to_tensor
from .infer import autocast, load_generators, translate_batch


def translate_folder(checkpoint: str | Path, src: str | Path, out: str | Path, *, direction: str = "AtoB",
                     batch_size: int = 8, device: str = "auto", precision: str = "fp32",
                     progress: bool = True) -> list[Path]:
    """Translate every image under ``src`` into ``out`` (same relative paths, as PNG).

    Images are batched with others of the same size, so any mix of sizes works."""
    dev = torch.device(("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device)
    gens = load_generators(checkpoint, dev)
    net = gens.net(direction)
    src, out = Path(src), Path(out)
    files = list_images(src)
    by_size: dict[tuple[int, int], list[Path]] = defaultdict(list)
    for f in files:
        with Image.open(f) as im:
            by_size[im.size].append(f)
    written = []
    bar = tqdm(total=len(files), unit="img", desc=f"translate {direction}", disable=not progress)
    for group in by_size.values():
        for i in range(0, len(group), batch_size):
            chunk = group[i: i + batch_size]
            x = torch.stack([to_tensor(load_rgb(f)) for f in chunk]).to(dev)
            with autocast(dev, precision):
                y = translate_batch(net, x)
            for f, img in zip(chunk, y):
                target = (out / f.relative_to(src)).with_suffix(".png")
                target.parent.mkdir(parents=True, exist_ok=True)
                to_image(img).save(target)
                written.append(target)
            bar.update(len(chunk))
    bar.close()
    return written
