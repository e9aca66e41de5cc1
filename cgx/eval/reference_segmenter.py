"""A reference segmenter for the FCN score (``cgx eval --labels DIR --segmenter FILE.pt``), trained on one
domain's real images and their label maps and saved as TorchScript: the paper's protocol (Zhu et al. 2017,
Tables 1-2: an FCN trained on the target domain's real photos judges the translations into it). One
segmenter judging every run keeps runs with and without semantic consistency comparable (``make
demo-semantic``); a run's own segmenter (``--segmenter run``) has seen its own generator's outputs.

    python -m cgx.eval.reference_segmenter data/demo_labels/trainB seg_B.pt --classes 4 --steps 600

The images are the folder's files (8-bit RGB or grey, read as cgx reads a domain by default), each with
its label map in ``FOLDER_labels/`` beside it (``cgx.data.label_maps``); training takes random crops of
``--crop`` pixels (none: whole images, which must then be the same size), flipped left-right, with Adam.
The network is a ``segmenter`` plugin (``--network``, default the small ``unet``). With ``--state-dict`` it
writes the network's weights instead, for ``method.semantic.init_from`` (a segmenter pretrained on the
labelled domain A: ``python -m cgx.eval.reference_segmenter data/demo_labels/trainA seg_A.pth --classes 4
--width 8 --state-dict``)."""
from __future__ import annotations

import argparse
import random
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..errors import CgxError, UsageError
from ..safe_text import shown

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def load_labelled(folder: Path, classes: int, ignore_index: int, channels: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Every image of ``folder`` (float32 (C, H, W) in [-1, 1]) with its label map (int64 (H, W))."""
    from PIL import Image

    from ..config import LabelSpec
    from ..data.label_maps import label_files, labels_folder, read_label_map

    if not folder.is_dir():
        raise UsageError(f"{shown(folder)} is not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not files:
        raise UsageError(f"{shown(folder)} holds no images ({', '.join(IMAGE_SUFFIXES)})")
    spec = LabelSpec(classes=classes, ignore_index=ignore_index)
    out = []
    for image, labels in zip(files, label_files(files, folder, labels_folder(folder), key="labels")):
        with Image.open(image) as im:
            pixels = np.asarray(im.convert("RGB" if channels == 3 else "L"), dtype=np.float32) / 127.5 - 1
            size = im.size
        x = pixels.transpose(2, 0, 1) if pixels.ndim == 3 else pixels[None]
        out.append((np.ascontiguousarray(x), read_label_map(labels, spec, size)))
    return out


def train_reference(samples, network: dict, classes: int, ignore_index: int, steps: int, batch_size: int,
                    crop: int | None, lr: float, seed: int) -> torch.nn.Module:
    """A segmenter plugin trained on ``samples`` with the mean cross-entropy over labelled pixels."""
    from .. import plugins

    rng = random.Random(seed)
    torch.manual_seed(seed)
    args = {k: v for k, v in network.items() if k != "name"}
    net = plugins.create("segmenter", network["name"], in_channels=samples[0][0].shape[0], classes=classes, **args)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    net.train()
    for _ in range(steps):
        xs, ys = [], []
        for x, y in (samples[rng.randrange(len(samples))] for _ in range(batch_size)):
            if crop is not None:
                h, w = y.shape
                if h < crop or w < crop:
                    raise UsageError(f"--crop {crop} is larger than an image ({w}x{h})")
                top, left = rng.randint(0, h - crop), rng.randint(0, w - crop)
                x, y = x[:, top:top + crop, left:left + crop], y[top:top + crop, left:left + crop]
            if rng.random() < 0.5:
                x, y = x[:, :, ::-1], y[:, ::-1]
            xs.append(torch.from_numpy(np.ascontiguousarray(x)))
            ys.append(torch.from_numpy(np.ascontiguousarray(y)))
        if len({tuple(y.shape) for y in ys}) > 1:
            raise UsageError("the images differ in size: give --crop N to train on crops of one size")
        logits = net(torch.stack(xs))
        loss = F.cross_entropy(logits, torch.stack(ys), ignore_index=ignore_index)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return net.eval()


def save_torchscript(net: torch.nn.Module, example: torch.Tensor, out: Path) -> None:
    """``net`` traced on ``example`` and saved (what ``cgx eval --segmenter FILE.pt`` loads)."""
    _check_output(out)
    with torch.no_grad(), warnings.catch_warnings():  # trace is deprecated in torch >= 2.9; eval loads it as ever
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        traced = torch.jit.trace(net, example, check_trace=False)
    tmp = out.with_name(out.name + ".tmp")
    traced.save(str(tmp))
    tmp.replace(out)


def save_state_dict(net: torch.nn.Module, out: Path) -> None:
    """``net``'s weights (``torch.save(net.state_dict())``: what ``method.semantic.init_from`` loads)."""
    _check_output(out)
    tmp = out.with_name(out.name + ".tmp")
    torch.save(net.state_dict(), tmp)
    tmp.replace(out)


def _check_output(out: Path) -> None:
    if out.is_symlink() or (out.exists() and not out.is_file()):
        raise UsageError(f"{shown(out)} exists and is not a plain file; name a new file")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cgx.eval.reference_segmenter", description=__doc__.split("\n\n")[0])
    p.add_argument("images", type=Path, help="a folder of real images, with FOLDER_labels/ beside it")
    p.add_argument("output", type=Path, help="the TorchScript file to write (.pt)")
    p.add_argument("--classes", type=int, required=True, help="how many classes the label maps hold")
    p.add_argument("--ignore-index", type=int, default=255, help="label of pixels that belong to no class (255)")
    p.add_argument("--network", default="unet", help="a registered segmenter (cgx plugins; default unet)")
    p.add_argument("--width", type=int, default=None, help="the unet segmenter's width (default its own)")
    p.add_argument("--steps", type=int, default=600, help="training steps (600)")
    p.add_argument("--batch-size", type=int, default=8, help="images a step (8)")
    p.add_argument("--crop", type=int, default=None, help="random crops of this size (default: whole images)")
    p.add_argument("--lr", type=float, default=2e-3, help="Adam's learning rate (2e-3)")
    p.add_argument("--channels", type=int, choices=(1, 3), default=3, help="read the images as grey (1) or RGB (3)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-dict", action="store_true",
                   help="write the network's state dict instead of TorchScript (method.semantic.init_from reads it; "
                        "give the same --network and --width as method.semantic.network)")
    args = p.parse_args(argv)
    try:
        if args.classes < 2 or args.steps < 1 or args.batch_size < 1:
            raise UsageError("--classes must be >= 2, --steps and --batch-size >= 1")
        samples = load_labelled(args.images, args.classes, args.ignore_index, args.channels)
        network = {"name": args.network, **({"width": args.width} if args.width else {})}
        net = train_reference(samples, network, args.classes, args.ignore_index, args.steps, args.batch_size,
                              args.crop, args.lr, args.seed)
        if args.state_dict:
            save_state_dict(net, args.output)
        else:
            save_torchscript(net, torch.from_numpy(samples[0][0][None].copy()), args.output)
    except CgxError as e:
        print(f"cgx: error: {shown(str(e))}", file=sys.stderr)
        return 2
    kind = "state dict" if args.state_dict else "TorchScript"
    print(f"cgx: reference segmenter ({kind}, {args.network}, {args.classes} classes, {args.steps} steps on "
          f"{len(samples)} images of {shown(args.images)}) in {shown(args.output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
