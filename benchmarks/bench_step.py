"""Seconds per CycleGAN training iteration and images/s, cgx's step against plain PyTorch.

One iteration = generator phase (G and F forward both ways, cycle + identity L1, LSGAN, backward,
Adam step) then discriminator phase (D_A and D_B on real + fake, backward, Adam step), batch 1.
The run always includes a plain-PyTorch eager fp32 iteration of the same networks
(``baseline-fp32-eager``: ``cgx.train.reference``, the paper's algorithm written without any cgx
step code), so every speedup in the table is measured against a baseline from the same run on the
same machine.

    .venv/bin/python benchmarks/bench_step.py --sizes 128 --iters 10
    .venv/bin/python benchmarks/bench_step.py --sizes 128 256 --modes fp32 bf16 --compile
    .venv/bin/python benchmarks/bench_step.py --sizes 128 --threads 1 --json /tmp/one_thread.json

Sizes up to 128 px use 6 residual blocks, larger ones 9 (the paper's choice). The table goes to
stdout, the numbers (with per-iteration times) to --json.
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

from cgx import plugins
from cgx.config import load_config
from cgx.distributed import WorldInfo, build_strategy
from cgx.train import components
from cgx.train.rng import seed_everything
from cgx.train.optim import build_optimizer
from cgx.train.reference import ReferenceCycleGAN
from cgx.train.step import CycleGANStep, Objective

BASELINE = "baseline-fp32-eager"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where DDPStrategy puts cgx's step


def blocks_for(size: int) -> int:
    return 6 if size <= 128 else 9


def random_images(size: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.rand(1, 3, size, size, device=device) * 2 - 1 for _ in range(2))


# --- the reference: plain PyTorch, eager, fp32 ----------------------------------------------------

def build_baseline(size: int):
    """The same networks and optimizers as cgx's defaults, stepped by the paper's algorithm written
    plainly (``cgx.train.reference``, which the tests hold cgx's step equal to)."""
    seed_everything(0)
    G, F = (plugins.create("generator", "resnet", n_blocks=blocks_for(size)).to(DEVICE) for _ in range(2))
    D_A, D_B = (plugins.create("discriminator", "patchgan").to(DEVICE) for _ in range(2))
    ref = ReferenceCycleGAN(G, F, D_A, D_B)
    return ref.iteration, random_images(size, DEVICE)


# --- cgx: the trainer's own step ------------------------------------------------------------------

def build_cgx(size: int, precision: str, compile: bool):
    """CycleGANStep wired as Trainer wires it, minus data loading, schedules and logging."""
    cfg = load_config(None, [
        "model.generator.name=resnet", f"model.generator.n_blocks={blocks_for(size)}", f"data.crop_size={size}",
        f"train.precision={precision}", f"train.compile={str(compile).lower()}",
    ])
    registry = plugins.default_registry()
    s = build_strategy(cfg.distributed, cfg.train, WorldInfo())  # one process
    seed_everything(0)
    gens, discs = components.build_networks(cfg, registry)
    gens.to(s.device)
    discs.to(s.device)
    if cfg.train.compile:
        for net in (gens.G, gens.F, discs.D_A, discs.D_B):
            net.compile()
    gens_t = s.wrap(gens, build_optimizer(gens.parameters(), cfg.optim), name="generators")
    discs_t = s.wrap(discs, build_optimizer(discs.parameters(), cfg.optim), name="discriminators")
    objective = Objective(components.build_adversarial_loss(cfg, registry),
                          components.build_reconstruction_loss(cfg, registry),
                          cfg.loss.cycle_weight, cfg.loss.identity_weight)
    pool_a, pool_b = components.build_buffer(cfg, registry), components.build_buffer(cfg, registry)
    step = CycleGANStep(gens_t, discs_t, objective, pool_a, pool_b, s.autocast)
    return step, random_images(size, s.device)


# --- measuring ------------------------------------------------------------------------------------

def measure(iteration, images, warmup: int, iters: int) -> dict:
    def timed() -> float:
        t0 = time.perf_counter()
        iteration(*images)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    warmup_s = sum(timed() for _ in range(warmup))
    times = [timed() for _ in range(iters)]
    s_iter = statistics.median(times)
    return {"s_per_iter": s_iter, "images_per_s": images[0].shape[0] / s_iter,
            "mean_s": statistics.fmean(times), "min_s": min(times), "warmup_s": warmup_s, "times_s": times}


def run_one(name: str, build, warmup: int, iters: int) -> dict:
    try:
        iteration, images = build()
        return {"mode": name, **measure(iteration, images, warmup, iters)}
    except Exception as e:  # compile in particular may fail on a CPU toolchain; report, don't crash
        reason = (str(e).strip().splitlines() or [""])[0][:100]
        return {"mode": name, "error": f"{type(e).__name__}: {reason}"}
    finally:
        gc.collect()


def variants(args) -> list[tuple[str, str, bool]]:
    """(label, precision, compile) for every cgx variant asked for."""
    out = [(f"cgx-{p}", p, False) for p in args.modes]
    if args.compile:
        out += [(f"cgx-{p}-compile", p, True) for p in args.modes]
    return out


def bf16_hardware() -> str:
    """The CPU's native bf16 units as torch sees them (without them oneDNN emulates bf16 in fp32)."""
    checks = {"amx_bf16": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    found = [name for name, fn in checks.items() if getattr(torch.cpu, fn, lambda: False)()]
    return ", ".join(found) or "none (bf16 is emulated: expect it slower than fp32)"


HEADER = f"{'size':>5} {'blocks':>6}  {'mode':<24} {'s/iter':>8} {'images/s':>9} {'vs baseline':>11}"


def print_row(r: dict) -> None:
    lead = f"{r['size']:>5} {r['blocks']:>6}  {r['mode']:<24}"
    if "error" in r:
        print(f"{lead} failed: {r['error']}", flush=True)
        return
    speedup = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
    print(f"{lead} {r['s_per_iter']:>8.3f} {r['images_per_s']:>9.2f} {speedup:>11}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="crop sizes in px (default: 128 256)")
    p.add_argument("--modes", nargs="+", default=["fp32", "bf16"], choices=["fp32", "bf16", "fp16"],
                   help="cgx precisions to run (train.precision); the fp32 eager baseline always runs")
    p.add_argument("--compile", action="store_true",
                   help="also run each mode with train.compile=true (slow to warm up; failures are reported)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per mode (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help=f"torch.set_num_threads (default: all cores, {os.cpu_count()} here)")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_step.json"),
                   help="where to write the results (default: %(default)s)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {DEVICE.type}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 hardware: {bf16_hardware()}\n")

    meta = {"torch": torch.__version__, "device": DEVICE.type, "threads": args.threads,
            "machine": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_hardware": bf16_hardware(),
            "iters": args.iters, "warmup": args.warmup, "batch_size": 1}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    print(HEADER)
    print("-" * len(HEADER))
    for size in args.sizes:
        runs = [(BASELINE, lambda: build_baseline(size))] + [
            (label, lambda p=precision, c=comp: build_cgx(size, p, c))
            for label, precision, comp in variants(args)]
        base = None
        for label, build in runs:
            r = {"size": size, "blocks": blocks_for(size), **run_one(label, build, args.warmup, args.iters)}
            base = base or r
            if "error" not in r and "error" not in base:
                r["speedup"] = base["s_per_iter"] / r["s_per_iter"]
            rows.append(r)
            print_row(r)
            # Written after every row, so that a run cut short still leaves what it measured.
            args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
