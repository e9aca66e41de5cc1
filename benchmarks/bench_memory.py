"""Peak memory and seconds per generator forward + backward, with and without
``train.activation_checkpointing``.

Each configuration runs in a fresh subprocess, so that one's allocations cannot hide another's peak.
What is measured is one generator (the 9-block ResNet by default, fp32, batch 1, train mode):
forward on a random image, a scalar loss, backward (the part of a training step that checkpointing
changes; the discriminators and the optimizer step are the same either way).

- CPU: the peak resident set size during the iterations minus the resident size just before the first
  one (``getrusage`` ``ru_maxrss`` against ``/proc/self/statm``), so weights, input and the Python
  runtime are not counted. The subprocess runs with ``MALLOC_MMAP_THRESHOLD_=1048576`` so that glibc
  hands large freed blocks back at once (by default it keeps them, and the peak would count memory
  freed long before).
- CUDA: ``torch.cuda.max_memory_allocated`` minus the allocated memory before the first iteration.
- Both: the bytes autograd keeps for backward (``saved_tensors_hooks``), which does not depend on
  the allocator.
- Time: wall seconds per iteration, and the process's CPU seconds (all threads), which a machine
  shared with other work inflates less than the wall time.

    .venv/bin/python benchmarks/bench_memory.py                       # 256 and 512 px, 9 blocks
    .venv/bin/python benchmarks/bench_memory.py --sizes 1024 --iters 2 --generator unet --json out.json
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time

import torch

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def measure(generator: str, size: int, blocks: int, checkpointing: bool, iters: int) -> dict:
    """One configuration, in this process (the parent calls it through a fresh subprocess)."""
    from cgx import plugins

    torch.manual_seed(0)
    kwargs = {"n_blocks": blocks} if generator == "resnet" else {}
    net = plugins.create("generator", generator, **kwargs).to(DEVICE).train()
    if checkpointing:
        net.enable_activation_checkpointing()
    x = torch.rand(1, 3, size, size, device=DEVICE) * 2 - 1

    saved = 0

    def pack(t):
        nonlocal saved
        saved += t.numel() * t.element_size()
        return t

    cpu: list[float] = []

    def once(count_saved: bool = False) -> float:
        t0, c0 = time.perf_counter(), time.process_time()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t) if count_saved else contextlib.nullcontext():
            y = net(x)
        y.square().mean().backward()
        net.zero_grad(set_to_none=True)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        del y
        cpu.append(time.process_time() - c0)
        return time.perf_counter() - t0

    if DEVICE.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        before = rss_bytes()
    times = [once(count_saved=(i == 0)) for i in range(iters)]
    peak = (torch.cuda.max_memory_allocated() if DEVICE.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
    return {"generator": generator, "size": size, "blocks": blocks, "checkpointing": checkpointing,
            "peak_bytes": peak - before, "saved_for_backward_bytes": saved,
            "s_per_iter": statistics.median(times[1:] if len(times) > 1 else times), "times": times,
            "cpu_s_per_iter": statistics.median(cpu[1:] if len(cpu) > 1 else cpu),
            "memory": "cuda max_memory_allocated" if DEVICE.type == "cuda" else "peak RSS delta"}


def in_subprocess(args: argparse.Namespace, size: int, checkpointing: bool) -> dict:
    cmd = [sys.executable, __file__, "--one", f"{size}:{int(checkpointing)}", "--generator", args.generator,
           "--blocks", str(args.blocks), "--iters", str(args.iters)]
    # glibc raises its mmap threshold as large blocks are freed and then keeps freed memory in the heap,
    # so the peak RSS would count memory freed long before; a fixed threshold returns large blocks at free.
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            return next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        return platform.processor() or "unknown"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    p.add_argument("--generator", default="resnet", help="resnet (default) or unet, at their default width")
    p.add_argument("--blocks", type=int, default=9, help="ResNet residual blocks (default 9)")
    p.add_argument("--iters", type=int, default=3, help="iterations per configuration; the first is not timed")
    p.add_argument("--json", default=None, help="write the rows here")
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        size, ckpt = args.one.split(":")
        print(json.dumps(measure(args.generator, int(size), args.blocks, ckpt == "1", args.iters)))
        return
    device = torch.cuda.get_device_name() if DEVICE.type == "cuda" else cpu_model()
    print(f"{args.generator} ({args.blocks} blocks), fp32, batch 1, generator forward + backward, "
          f"median of {max(args.iters - 1, 1)} timed iterations; {DEVICE.type}: {device}, "
          f"{torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"{'size':>5} {'checkpointing':>13} {'peak MiB':>9} {'saved MiB':>10} {'s/iter':>8} {'CPU s/iter':>10}")
    rows = []
    for size in args.sizes:
        for ckpt in (False, True):
            r = in_subprocess(args, size, ckpt)
            rows.append(r)
            print(f"{size:>5} {'on' if ckpt else 'off':>13} {r['peak_bytes'] / 2**20:>9.0f} "
                  f"{r['saved_for_backward_bytes'] / 2**20:>10.0f} {r['s_per_iter']:>8.2f} {r['cpu_s_per_iter']:>10.2f}",
                  flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"device": device, "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
