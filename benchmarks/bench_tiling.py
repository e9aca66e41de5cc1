"""Peak memory and time of ``cgx translate --tile`` on one large image, against untiled.

Each configuration runs in a fresh subprocess (``MALLOC_MMAP_THRESHOLD_`` fixed, as in
bench_memory.py, so freed blocks are not counted): random weights, an image of the given size,
``cgx.tiling.translate_tiled`` (or ``cgx.infer.translate_batch`` with --untiled), fp32, inference mode.
Reported: the peak RSS of the whole process (Python and torch included), its peak minus the RSS
before translating (the input image tensor included), and the seconds; tiled also gives the max
difference to untiled when --compare is given (only for images that fit untiled).

    .venv/bin/python benchmarks/bench_tiling.py                                # 6000x4000, 9-block ResNet, tile 512
    .venv/bin/python benchmarks/bench_tiling.py --ngf 4 --blocks 1 --untiled   # and the same untiled
    .venv/bin/python benchmarks/bench_tiling.py --size 512x384 --compare
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import torch


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def one(args) -> dict:
    from cgx import plugins
    from cgx.infer import pad_for, translate_batch
    from cgx.tiling import plan, translate_tiled

    torch.manual_seed(0)
    net = plugins.create("generator", args.generator, ngf=args.ngf,
                         **({"n_blocks": args.blocks} if args.generator == "resnet" else {})).eval()
    w, h = map(int, args.size.split("x"))
    x = (torch.rand(1, 3, h, w) * 2 - 1)
    before = rss_bytes()
    t0, c0 = time.perf_counter(), time.process_time()
    if args.mode == "untiled":
        y = translate_batch(net, x)
    else:
        p = plan(net, args.generator)
        y = translate_tiled(p, pad_for(net, x), args.tile, progress=args.progress)[..., :h, :w]
    seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    row = {"mode": args.mode, "size": args.size, "generator": args.generator, "ngf": args.ngf, "blocks": args.blocks,
           "tile": args.tile if args.mode == "tiled" else None, "seconds": seconds, "cpu_seconds": cpu, "peak_rss_bytes": peak,
           "peak_minus_before_bytes": peak - before, "torch_threads": torch.get_num_threads()}
    if args.compare and args.mode == "tiled":
        row["max_abs_diff_to_untiled"] = (y - translate_batch(net, x)).abs().max().item()
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", default="6000x4000", help="WIDTHxHEIGHT (default 6000x4000)")
    p.add_argument("--generator", default="resnet")
    p.add_argument("--ngf", type=int, default=64)
    p.add_argument("--blocks", type=int, default=9)
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--untiled", action="store_true", help="also run untiled (needs the memory for it)")
    p.add_argument("--compare", action="store_true", help="tiled: max difference to untiled, in the same process")
    p.add_argument("--progress", action="store_true")
    p.add_argument("--json", default=None)
    p.add_argument("--mode", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        print(json.dumps(one(args)))
        return
    rows = []
    for mode in ["tiled"] + (["untiled"] if args.untiled else []):
        cmd = [sys.executable, __file__, "--mode", mode, *sys.argv[1:]]
        env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
        out = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True, env=env)
        r = json.loads(out.stdout.strip().splitlines()[-1])
        rows.append(r)
        extra = f", max |tiled - untiled| {r['max_abs_diff_to_untiled']:.2e}" if "max_abs_diff_to_untiled" in r else ""
        print(f"{mode:>8} {r['size']} {r['generator']} ngf={r['ngf']} blocks={r['blocks']} tile={r['tile']}: "
              f"{r['seconds']:.1f} s ({r['cpu_seconds']:.1f} CPU s), peak RSS {r['peak_rss_bytes'] / 2**30:.2f} GiB "
              f"(+{r['peak_minus_before_bytes'] / 2**30:.2f} GiB while translating){extra}", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=1)


if __name__ == "__main__":
    main()
