"""Images/s of the shard loader (tar read + JPEG decode + augment) against the plain folder loader.

Both loaders read the same JPEG images (synthetic, 256 x 256, with noise so that they compress like
photos, ~40 KB each) in the same run, with the paper's augmentation (resize 286 bicubic, random crop
256, flip, [-1, 1]) in DataLoader workers, batch 4 per domain. One step yields 4 A + 4 B images;
images/s counts both. The first batch of each measurement (worker start-up, first shuffle window)
is not timed.

    .venv/bin/python benchmarks/bench_data.py                          # 0, 1, 2 workers
    .venv/bin/python benchmarks/bench_data.py --workers 1 2 4 8 --steps 100 --images 800

What the step demands at the GPU targets of issue 22 (the default --target): a CycleGAN step at 256 px
(9 blocks) is 1.88 TFLOP per image pair (``torch.utils.flop_counter`` on ``cgx.train.reference``, forward
and backward of all four networks), so at 25% MFU of an H100/H200 (989 TFLOP/s dense bf16) it takes
989e12 * 0.25 / 1.88e12 = 131 pairs/s = 263 images/s (A and B together), whatever the batch; 526 at
50% MFU. The last lines say how many workers of this machine that takes, from the best per-worker rate
measured with real DataLoader workers (workers >= 1) of each loader. Numbers go to stdout and --json.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cgx.config import DataConfig
from cgx.data import build_source
from cgx.data.demo import render
from cgx.data.shard_writer import write_shards


def make_images(root: Path, n: int, size: int) -> None:
    rng = np.random.default_rng(0)
    for domain in "AB":
        folder = root / f"train{domain}"
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(n):
            base = np.asarray(render(domain, random.Random(f"{domain}{i}"), size), dtype=np.float32)
            noisy = np.clip(base + rng.normal(0, 12, base.shape), 0, 255).astype(np.uint8)
            Image.fromarray(noisy).save(folder / f"{i:05d}.jpg", quality=90)


def measure(cfg: DataConfig, steps: int, batch: int) -> dict:
    source = build_source(cfg, batch=batch, seed=0)
    it = source.batches(0, steps + 1)
    next(it)  # start-up, not timed
    t0 = time.perf_counter()
    n = 0
    for b in it:
        n += b["A"].shape[0] + b["B"].shape[0]
    dt = time.perf_counter() - t0
    return {"images": n, "seconds": dt, "images_per_s": n / dt}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=400, help="JPEG images per domain (default 400)")
    p.add_argument("--size", type=int, default=256, help="image side in px (default 256)")
    p.add_argument("--load-size", type=int, default=286)
    p.add_argument("--crop-size", type=int, default=256)
    p.add_argument("--batch", type=int, default=4, help="images per domain per step (default 4)")
    p.add_argument("--steps", type=int, default=40, help="timed steps per measurement (default 40)")
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="loader workers to try (0: in-process)")
    p.add_argument("--target", type=float, nargs="+", default=[263, 526],
                   help="images/s the step consumes (default: 256 px CycleGAN at 25%% and 50%% MFU of an H100)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_data.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)

    with tempfile.TemporaryDirectory(prefix="cgx-bench-data-") as tmp:
        root = Path(tmp)
        make_images(root / "images", args.images, args.size)
        write_shards(root / "images", root / "shards", max_count=100, workers=1, progress=False)
        kb = sum(f.stat().st_size for f in (root / "images/trainA").iterdir()) / args.images / 1e3
        n_shards = len(list((root / "shards").glob("trainA-*.tar")))
        common = dict(load_size=args.load_size, crop_size=args.crop_size, flip=True)
        cfgs = {
            "folder": lambda w: DataConfig(source="folder", root=str(root / "images"), workers=w, **common),
            "shards": lambda w: DataConfig(source="shards", workers=w, shuffle_buffer=100,
                                           shards_a=f"{root}/shards/trainA-{{000000..{n_shards - 1:06d}}}.tar",
                                           shards_b=f"{root}/shards/trainB-{{000000..{n_shards - 1:06d}}}.tar",
                                           **common),
        }
        print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}; "
              f"{args.images} JPEGs per domain, {args.size} px, {kb:.0f} KB each, {n_shards} shards per domain; "
              f"resize {args.load_size} + crop {args.crop_size} + flip, batch {args.batch} per domain")
        header = f"{'loader':<8} {'workers':>7} {'images/s':>9} {'per worker':>11}"
        print(header + "\n" + "-" * len(header))
        rows = []
        for w in args.workers:
            for name, make in cfgs.items():
                r = {"loader": name, "workers": w, **measure(make(w), args.steps, args.batch)}
                r["per_worker"] = r["images_per_s"] / max(1, w)
                rows.append(r)
                print(f"{name:<8} {w:>7} {r['images_per_s']:>9.1f} {r['per_worker']:>11.1f}", flush=True)

    print()
    for name in cfgs:
        mine = [r for r in rows if r["loader"] == name]
        best = max(r["per_worker"] for r in ([r for r in mine if r["workers"] >= 1] or mine))
        needs = ", ".join(f"{t:.0f} images/s: {math.ceil(t / best)} workers" for t in args.target)
        print(f"{name}: best {best:.0f} images/s per worker -> {needs} (CPU cores permitting)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    meta = {"cpus": os.cpu_count(), "torch": torch.__version__, "images": args.images, "size": args.size,
            "kb_per_image": kb, "batch": args.batch, "steps": args.steps}
    args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
