"""Inference throughput of a trained generator, as `cgx translate` (and evaluation) runs it:
images/s at a given size for each precision, memory format and batch size.

    .venv/bin/python benchmarks/bench_translate.py                      # 256 px, 9 blocks
    .venv/bin/python benchmarks/bench_translate.py --batches 1 4 8 --variants fp32 fp32+cl bf16

A variant is a precision (fp32, bf16, fp16, auto) with ``+cl`` for channels_last. Every variant runs
``cgx.infer.translate_batch`` (inference mode, padding to the network's multiple). Random weights: the
network's cost does not depend on them. The first row (fp32, batch 1, inference mode) is the reference for the speedups.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from cgx import plugins
from cgx.infer import translate_batch
from cgx.precision import autocast
from cgx.precision import cpu_has_bf16

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def measure(variant: str, size: int, blocks: int, batch: int, warmup: int, iters: int) -> dict:
    precision, *options = variant.split("+")
    torch.manual_seed(0)
    net = plugins.create("generator", "resnet", n_blocks=blocks).to(DEVICE).eval()
    x = torch.rand(batch, 3, size, size, device=DEVICE) * 2 - 1
    if "cl" in options:
        net, x = net.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    def once() -> float:
        t0 = time.perf_counter()
        with autocast(precision, DEVICE):
            y = translate_batch(net, x)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        del y
        return time.perf_counter() - t0

    for _ in range(warmup):
        once()
    times = [once() for _ in range(iters)]
    s = statistics.median(times)
    return {"variant": variant, "batch": batch, "s_per_batch": s, "images_per_s": batch / s, "times_s": times}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=256, help="image side in px (default 256)")
    p.add_argument("--blocks", type=int, default=9, help="residual blocks (default 9, the 256 px generator)")
    p.add_argument("--batches", type=int, nargs="+", default=[1, 4], help="batch sizes (default: 1 4)")
    p.add_argument("--variants", nargs="+", default=["fp32", "fp32+cl", "bf16", "bf16+cl"],
                   help="precision[+cl] (default: %(default)s)")
    p.add_argument("--iters", type=int, default=5)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_translate.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    meta = {"torch": torch.__version__, "device": DEVICE.type, "threads": args.threads,
            "device_name": torch.cuda.get_device_name() if DEVICE.type == "cuda" else platform.processor(),
            "cpu_bf16_units": cpu_has_bf16(), "size": args.size, "blocks": args.blocks}
    print(f"torch {torch.__version__} on {meta['device_name'] or DEVICE.type}, {args.threads} threads, "
          f"CPU bf16 units: {meta['cpu_bf16_units']}; {args.size} px, {args.blocks} blocks\n")
    print(f"{'variant':<12} {'batch':>5} {'s/batch':>9} {'images/s':>9} {'speedup':>8}")
    rows, base = [], None
    args.json.parent.mkdir(parents=True, exist_ok=True)
    for batch in args.batches:
        for v in args.variants:
            try:
                r = measure(v, args.size, args.blocks, batch, args.warmup, args.iters)
            except Exception as e:  # an unsupported precision on this device: report it, go on
                r = {"variant": v, "batch": batch, "error": f"{type(e).__name__}: {str(e).splitlines()[0][:100]}"}
                print(f"{v:<12} {batch:>5} failed: {r['error']}")
                rows.append(r)
                continue
            base = base or r
            r["speedup"] = r["images_per_s"] / base["images_per_s"]
            rows.append(r)
            print(f"{v:<12} {batch:>5} {r['s_per_batch']:>9.3f} {r['images_per_s']:>9.2f} {r['speedup']:>7.2f}x", flush=True)
            args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
