"""Seconds per CycleGAN training iteration for several variants timed in turn, for deciding the
``auto`` speed choices on a CPU kind (``cgx.train.speed``): each round times one iteration of every
variant, one after another, so a busy machine slows them alike; each variant's figure is the
minimum over the rounds (its median is printed beside it). Compare ratios within one run only.

    .venv/bin/python benchmarks/bench_cpu_kinds.py --size 128 --rounds 8
    ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16 .venv/bin/python benchmarks/bench_cpu_kinds.py   # AVX512-BF16, no AMX
    ONEDNN_MAX_CPU_ISA=AVX2 .venv/bin/python benchmarks/bench_cpu_kinds.py               # no bf16 units

On a CPU with AMX, oneDNN's ``ONEDNN_MAX_CPU_ISA`` stands in for the other kinds: ``AVX512_CORE_BF16``
uses AVX512-BF16 instructions without AMX tiles, ``AVX2`` has no bf16 instructions at all (oneDNN then
declines bf16, and torch's own bf16 kernels are tens of times slower than fp32). A variant whose
first iteration takes more than ``--give-up`` times the fastest variant's is timed once, not per round.
The steps are ``benchmarks/bench_step.py``'s (cgx's own training step, batch 1).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_step import bf16_hardware, blocks_for, build_cgx  # noqa: E402


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, default=128, help="crop size in px (default: 128)")
    p.add_argument("--variants", nargs="+", default=["fp32", "bf16", "bf16+cl", "fp32+cl"], metavar="VARIANT",
                   help="bench_step variants (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=8, help="timed rounds (default: 8)")
    p.add_argument("--warmup", type=int, default=2, help="untimed iterations of each variant first (default: 2)")
    p.add_argument("--give-up", type=float, default=8.0,
                   help="a variant slower than this many times the fastest is timed once (default: 8)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="torch.set_num_threads (default: all cores)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} threads, aten capability "
          f"{torch.backends.cpu.get_cpu_capability()}, ONEDNN_MAX_CPU_ISA={os.environ.get('ONEDNN_MAX_CPU_ISA', '(unset)')}, "
          f"mkldnn bf16: {torch.ops.mkldnn._is_mkldnn_bf16_supported()}, bf16 hardware (cpuid): {bf16_hardware()}",
          flush=True)
    steps = {v: build_cgx(args.size, 1, v) for v in args.variants}

    def once(v: str) -> float:
        step, images = steps[v]
        t0 = time.perf_counter()
        step(*images)
        return time.perf_counter() - t0

    first = {}
    for v in args.variants:
        first[v] = min(once(v) for _ in range(args.warmup))
        print(f"  warm-up {v}: {first[v]:.3f} s", flush=True)
    fastest = min(first.values())
    slow = {v for v, s in first.items() if s > args.give_up * fastest}
    times: dict[str, list[float]] = {v: [first[v]] if v in slow else [] for v in args.variants}
    for r in range(args.rounds):
        for v in args.variants:
            if v not in slow:
                times[v].append(once(v))
        print(f"  round {r + 1}: " + ", ".join(f"{v} {times[v][-1]:.3f}" for v in args.variants if v not in slow),
              flush=True)
    best = {v: min(t) for v, t in times.items()}
    print(f"\n{args.size} px, {blocks_for(args.size)} blocks, {args.rounds} alternating rounds "
          f"(min; median in brackets; ratio against {args.variants[0]}):")
    for v in args.variants:
        note = "  (timed once: too slow)" if v in slow else ""
        print(f"  {v:<10} {best[v]:8.3f} s  [{statistics.median(times[v]):.3f}]  "
              f"{best[args.variants[0]] / best[v]:5.2f}x{note}", flush=True)


if __name__ == "__main__":
    main()
