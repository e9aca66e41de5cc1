"""Where one training step's time goes: torch.profiler's per-op table for one bench_step variant.

    .venv/bin/python benchmarks/profile_step.py --size 128 --variant bf16
    .venv/bin/python benchmarks/profile_step.py --size 256 --variant bf16+cl --top 25 --iters 5

The step is built exactly as ``bench_step.py`` builds it (``cgx.train.wiring.wire_step``), warmed up,
then ``--iters`` iterations are recorded. The table is sorted by self CPU time (self CUDA time on a
GPU) and shows the top ``--top`` ops; the percentages are of the recorded total. ``--trace PATH``
also writes a Chrome trace (open it in chrome://tracing or Perfetto).
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import DEVICE, build_baseline, build_cgx  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128, help="crop size in px (default 128)")
    p.add_argument("--variant", default="bf16",
                   help="a bench_step variant, precision[+cl][+compile][+sep], or 'baseline' (default: bf16)")
    p.add_argument("--method", default="cyclegan", help="the method (default: cyclegan)")
    p.add_argument("--batch", type=int, default=1, help="images per domain (default 1)")
    p.add_argument("--iters", type=int, default=3, help="recorded iterations (default 3)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default 3)")
    p.add_argument("--top", type=int, default=15, help="rows of the table (default 15)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    p.add_argument("--trace", type=Path, default=None, help="also write a Chrome trace here")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.variant == "baseline":
        iteration, images = build_baseline(args.size, args.batch)
    else:
        iteration, images = build_cgx(args.size, args.batch, args.variant, args.method)
    for _ in range(args.warmup):
        iteration(*images)
    cuda = DEVICE.type == "cuda"
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    if cuda:
        torch.cuda.synchronize()
    with profile(activities=activities) as prof:
        for _ in range(args.iters):
            iteration(*images)
        if cuda:
            torch.cuda.synchronize()
    key = "self_device_time_total" if cuda else "self_cpu_time_total"
    print(f"{args.variant} at {args.size} px, batch {args.batch}, {args.iters} iterations, "
          f"torch {torch.__version__} on {DEVICE.type}, {args.threads} threads; sorted by {key}")
    print(prof.key_averages().table(sort_by=key, row_limit=args.top, max_name_column_width=40))
    if args.trace:
        prof.export_chrome_trace(str(args.trace))
        print(f"wrote {args.trace}")


if __name__ == "__main__":
    main()
