"""Seconds per CycleGAN training iteration and images/s, cgx's step against plain PyTorch.

One iteration = generator phase (G and F forward both ways, cycle + identity L1, LSGAN, backward,
Adam step) then discriminator phase (D_A and D_B on real + fake, backward, Adam step), batch 1.
The run always includes a plain-PyTorch eager fp32 iteration of the same networks
(``baseline-fp32-eager``: ``cgx.train.reference``, the paper's algorithm written without any cgx
step code), so every speedup in the table is measured against a baseline from the same run on the
same machine.

    .venv/bin/python benchmarks/bench_step.py --sizes 128 --iters 10
    .venv/bin/python benchmarks/bench_step.py --sizes 128 256 --variants fp32 fp32+cl bf16 bf16+cl fp32+compile
    .venv/bin/python benchmarks/bench_step.py --sizes 256 --batch 4 --peak-tflops 989   # MFU on an H100

A variant is a precision (fp32, bf16, fp16) with options joined by ``+``: ``cl`` channels_last,
``compile`` torch.compile of the four networks, ``cg`` compiled with CUDA graphs (``train.compile_mode=
reduce-overhead``; on CPU the same as compile), ``sep`` six separate generator calls instead of four
batched ones. Every row reports the step's model FLOPs (counted once per size with
``torch.utils.flop_counter`` on the baseline iteration), the achieved TFLOP/s, the model FLOPs
utilisation when the peak is known (``--peak-tflops``, or the GPU's bf16 dense peak from a small
table), and on CUDA the peak memory.

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
from cgx.train.reference import ReferenceCycleGAN
from cgx.train.rng import seed_everything
from cgx.train.wiring import wire_step

BASELINE = "baseline-fp32-eager"
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")  # where DDPStrategy puts cgx's step


def blocks_for(size: int) -> int:
    return 6 if size <= 128 else 9


def random_images(size: int, device: torch.device, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    return tuple(torch.rand(batch, 3, size, size, device=device) * 2 - 1 for _ in range(2))


# --- the reference: plain PyTorch, eager, fp32 ----------------------------------------------------

def build_baseline(size: int, batch: int = 1):
    """The same networks and optimizers as cgx's defaults, stepped by the paper's algorithm written
    plainly (``cgx.train.reference``, which the tests hold cgx's step equal to)."""
    seed_everything(0)
    G, F = (plugins.create("generator", "resnet", n_blocks=blocks_for(size)).to(DEVICE) for _ in range(2))
    D_A, D_B = (plugins.create("discriminator", "patchgan").to(DEVICE) for _ in range(2))
    ref = ReferenceCycleGAN(G, F, D_A, D_B)
    return ref.iteration, random_images(size, DEVICE, batch)


# --- cgx: the trainer's own step ------------------------------------------------------------------

METHOD_SETTINGS = {
    # CUT and FastCUT as their recipes set them (recipes/cut_256.yaml): the anti-aliased generator.
    "cut": ["model.generator.antialias=true"],
    "fastcut": ["model.generator.antialias=true"],
}


def build_cgx(size: int, batch: int, variant: str, method: str = "cyclegan"):
    """The step as Trainer wires it (``cgx.train.wiring.wire_step``), minus data, schedules and logging."""
    precision, *options = variant.split("+")
    unknown = set(options) - {"cl", "compile", "cg", "sep"}
    if unknown:
        raise ValueError(f"unknown variant option(s) {sorted(unknown)} in {variant!r}; options: cl, compile, cg, sep")
    compiled = bool({"compile", "cg"} & set(options))
    cfg = load_config(None, [
        "model.generator.name=resnet", f"model.generator.n_blocks={blocks_for(size)}", f"data.crop_size={size}",
        f"train.precision={precision}", f"train.compile={str(compiled).lower()}",
        f"train.compile_mode={'reduce-overhead' if 'cg' in options else 'default'}",
        f"train.channels_last={str('cl' in options).lower()}", f"method.name={method}",
        *METHOD_SETTINGS.get(method, []),
    ])
    s = build_strategy(cfg.distributed, cfg.train, WorldInfo())  # one process
    wired = wire_step(cfg, plugins.default_registry(), s)
    if "sep" in options:
        if not hasattr(wired.gens.module, "batch_calls"):
            raise ValueError(f"+sep is CycleGAN's option (six generator calls); method {method} has none")
        wired.gens.module.batch_calls = False
    step = wired.step
    if wired.speed.cuda_graphs:  # as the trainer does: each iteration starts a new CUDA-graph step
        def step(a, b, inner=wired.step):
            wired.speed.begin_step()
            return inner(a, b)
    images = random_images(size, s.device, batch)
    if cfg.train.channels_last:
        images = tuple(x.contiguous(memory_format=torch.channels_last) for x in images)
    return step, images


def count_flops(size: int, batch: int) -> float:
    """FLOPs of one training iteration (forward and backward of every network), counted on the
    baseline iteration: the algorithm's FLOPs, whatever a variant does to run them faster."""
    from torch.utils.flop_counter import FlopCounterMode

    iteration, images = build_baseline(size, batch)
    with FlopCounterMode(display=False) as counter:
        iteration(*images)
    return float(counter.get_total_flops())


PEAK_BF16_TFLOPS = {"H100": 989.0, "H200": 989.0, "A100": 312.0, "L40S": 362.0, "A10": 125.0, "L4": 121.0}
"""Dense bf16 tensor-core peaks (vendor data sheets, SXM where there are two forms)."""


def peak_tflops(arg: float | None) -> float | None:
    if arg is not None:
        return arg
    if DEVICE.type == "cuda":
        name = torch.cuda.get_device_name()
        return next((v for k, v in PEAK_BF16_TFLOPS.items() if k in name), None)
    return None


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
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        iteration, images = build()
        out = {"mode": name, **measure(iteration, images, warmup, iters)}
        if DEVICE.type == "cuda":
            out["peak_memory_gib"] = torch.cuda.max_memory_allocated() / 2**30
        return out
    except Exception as e:  # compile in particular may fail on a CPU toolchain; report, don't crash
        reason = (str(e).strip().splitlines() or [""])[0][:100]
        return {"mode": name, "error": f"{type(e).__name__}: {reason}"}
    finally:
        gc.collect()


def bf16_hardware() -> str:
    """The CPU's native bf16 units as torch sees them (without them oneDNN emulates bf16 in fp32)."""
    checks = {"amx_bf16": "_is_amx_tile_supported", "avx512_bf16": "_is_avx512_bf16_supported"}
    found = [name for name, fn in checks.items() if getattr(torch.cpu, fn, lambda: False)()]
    return ", ".join(found) or "none (bf16 is emulated: expect it slower than fp32)"


HEADER = (f"{'size':>5} {'blocks':>6}  {'mode':<24} {'s/iter':>8} {'images/s':>9} {'vs baseline':>11} "
          f"{'TFLOP/s':>8} {'MFU':>6} {'peak GiB':>8}")


def print_row(r: dict) -> None:
    lead = f"{r['size']:>5} {r['blocks']:>6}  {r['mode']:<24}"
    if "error" in r:
        print(f"{lead} failed: {r['error']}", flush=True)
        return
    speedup = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
    mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-"
    mem = f"{r['peak_memory_gib']:.2f}" if "peak_memory_gib" in r else "-"
    tflops = f"{r['tflops_per_s']:.3f}" if "tflops_per_s" in r else "-"
    print(f"{lead} {r['s_per_iter']:>8.3f} {r['images_per_s']:>9.2f} {speedup:>11} {tflops:>8} "
          f"{mfu:>6} {mem:>8}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="crop sizes in px (default: 128 256)")
    p.add_argument("--variants", nargs="+", default=["fp32", "fp32+cl", "fp32+sep", "bf16", "bf16+cl"],
                   metavar="VARIANT", help="cgx variants: precision[+cl][+compile][+cg][+sep] (default: %(default)s); "
                   "the fp32 eager baseline always runs")
    p.add_argument("--method", default="cyclegan",
                   help="the method whose step cgx's rows time (default: cyclegan). The fp32 eager baseline "
                   "and the FLOP count are CycleGAN's reference: for another method they are left out and "
                   "its rows stand alone (vs its first row)")
    p.add_argument("--batch", type=int, default=1, help="images per domain per iteration (default 1)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the device's peak TFLOP/s for MFU (default: known GPUs' bf16 dense peak; none on CPU)")
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
            "iters": args.iters, "warmup": args.warmup, "batch_size": args.batch,
            "device_name": torch.cuda.get_device_name() if DEVICE.type == "cuda" else platform.processor(),
            "peak_tflops": peak_tflops(args.peak_tflops), "method": args.method}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    print(HEADER)
    print("-" * len(HEADER))
    for size in args.sizes:
        reference = args.method == "cyclegan"
        flops = count_flops(size, args.batch) if reference else None
        prefix = "cgx" if reference else f"cgx-{args.method}"
        runs = ([(BASELINE, lambda: build_baseline(size, args.batch))] if reference else []) + [
            (f"{prefix}-{v}", lambda v=v: build_cgx(size, args.batch, v, args.method)) for v in args.variants]
        base = None
        for label, build in runs:
            r = {"size": size, "blocks": blocks_for(size), "flops_per_iter": flops,
                 **run_one(label, build, args.warmup, args.iters)}
            base = base or r
            if "error" not in r and flops is not None:
                r["tflops_per_s"] = flops / r["s_per_iter"] / 1e12
                if meta["peak_tflops"]:
                    r["mfu"] = r["tflops_per_s"] / meta["peak_tflops"]
                if "error" not in base:
                    r["speedup"] = base["s_per_iter"] / r["s_per_iter"]
            rows.append(r)
            print_row(r)
            # Written after every row, so that a run cut short still leaves what it measured.
            args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
