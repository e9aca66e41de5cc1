"""Seconds per CycleGAN training iteration, and how close each variant comes to the machine's own limit.

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
batched ones.

The machine's limit is measured in the same run, before the rows and again after them: the best
TFLOP/s of a large matrix multiplication (4096 x 4096 on a CPU, 8192 on a GPU) in each precision the
rows use (fp32 on CUDA with TF32 when cuDNN's convolutions use it, as they do by default). Every row
reports the step's model FLOPs (counted once per size with ``torch.utils.flop_counter``: on the
baseline iteration for CycleGAN, on the method's own step otherwise), the achieved TFLOP/s and its
fraction of the limit of the row's precision ("of limit"); the model FLOPs utilisation against a
published peak when one is known (``--peak-tflops``, or the GPU's bf16 dense peak from a small
table); on CUDA the peak memory. On a busy machine the limit and the rows slow down together, so
the fractions stay roughly comparable while the seconds do not. The JSON's fractions are against
the better of the two limit measurements; when they differ by more than 10% the table is printed
again against it. ``benchmarks/profile_step.py`` shows where one variant's time goes.

Sizes up to 128 px use 6 residual blocks, larger ones 9 (the paper's choice). The table goes to
stdout, the numbers (with per-iteration times and both limit measurements) to --json.
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
CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}
"""What the timings read (``--clock``): wall seconds, or the process's CPU seconds (all its threads)."""
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


def count_flops(size: int, batch: int, method: str = "cyclegan") -> float:
    """FLOPs of one training iteration (forward and backward of every network): the algorithm's FLOPs,
    whatever a variant does to run them faster. Counted on the baseline iteration for CycleGAN, on
    the method's own eager fp32 step otherwise."""
    from torch.utils.flop_counter import FlopCounterMode

    if method == "cyclegan":
        iteration, images = build_baseline(size, batch)
    else:
        iteration, images = build_cgx(size, batch, "fp32", method)
    with FlopCounterMode(display=False) as counter:
        iteration(*images)
    return float(counter.get_total_flops())


# --- the machine's limit --------------------------------------------------------------------------

LIMIT_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def matmul_tflops(precision: str, n: int, clock=time.perf_counter, min_seconds: float = 1.0, reps: int = 3) -> float:
    """The best TFLOP/s of an n x n matrix product in ``precision`` on DEVICE: at least ``reps``
    timings and ``min_seconds`` of them (a GPU times 10 products per timing)."""
    dtype = LIMIT_DTYPES[precision]
    a, b = (torch.randn(n, n, device=DEVICE, dtype=dtype) for _ in range(2))
    per_timing = 10 if DEVICE.type == "cuda" else 1

    def timed() -> float:
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        t0 = clock()
        for _ in range(per_timing):
            torch.mm(a, b)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return (clock() - t0) / per_timing

    timed()  # warm-up: kernel choice, page faults
    times: list[float] = []
    while len(times) < reps or sum(times) * per_timing < min_seconds:
        times.append(timed())
        if len(times) >= 50:
            break
    return 2 * n**3 / min(times) / 1e12


def limit_label(precision: str) -> str:
    """What the fp32 limit computes in: TF32 on CUDA when cuDNN's convolutions use it (torch's default)."""
    if precision == "fp32" and DEVICE.type == "cuda" and torch.backends.cudnn.allow_tf32:
        return "fp32 (TF32)"
    return precision


def measure_limits(precisions: list[str], n: int, clock=time.perf_counter) -> dict[str, float]:
    """The limit of each precision (``matmul_tflops``); fp32 on CUDA with TF32 as the convolutions use it."""
    out = {}
    for precision in precisions:
        tf32 = torch.backends.cuda.matmul.allow_tf32
        if precision == "fp32" and DEVICE.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32
        try:
            out[precision] = matmul_tflops(precision, n, clock)
        finally:
            torch.backends.cuda.matmul.allow_tf32 = tf32
        gc.collect()
    return out


def describe_limits(limits: dict[str, float]) -> str:
    return ", ".join(f"{limit_label(p)} {v:.3f}" for p, v in limits.items())


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

def measure(iteration, images, warmup: int, iters: int, clock=time.perf_counter) -> dict:
    def timed() -> float:
        t0 = clock()
        iteration(*images)
        if DEVICE.type == "cuda":
            torch.cuda.synchronize()
        return clock() - t0

    warmup_s = sum(timed() for _ in range(warmup))
    times = [timed() for _ in range(iters)]
    s_iter = statistics.median(times)
    return {"s_per_iter": s_iter, "images_per_s": images[0].shape[0] / s_iter,
            "mean_s": statistics.fmean(times), "min_s": min(times), "warmup_s": warmup_s, "times_s": times}


def run_one(name: str, build, warmup: int, iters: int, clock=time.perf_counter) -> dict:
    try:
        if DEVICE.type == "cuda":
            torch.cuda.reset_peak_memory_stats()
        iteration, images = build()
        out = {"mode": name, **measure(iteration, images, warmup, iters, clock)}
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


HEADER = (f"{'size':>5} {'blocks':>6}  {'mode':<24} {'s/iter':>8} {'images/s':>9} {'TFLOP/s':>8} "
          f"{'of limit':>8} {'vs baseline':>11} {'MFU':>6} {'peak GiB':>8}")


def precision_of(mode: str) -> str:
    """``cgx-bf16+cl`` -> bf16; the baseline is fp32."""
    return "fp32" if mode == BASELINE else mode.split("-")[-1].split("+")[0]


def print_row(r: dict) -> None:
    lead = f"{r['size']:>5} {r['blocks']:>6}  {r['mode']:<24}"
    if "error" in r:
        print(f"{lead} failed: {r['error']}", flush=True)
        return
    speedup = f"{r['speedup']:.2f}x" if "speedup" in r else "-"
    mfu = f"{100 * r['mfu']:.1f}%" if "mfu" in r else "-"
    mem = f"{r['peak_memory_gib']:.2f}" if "peak_memory_gib" in r else "-"
    tflops = f"{r['tflops_per_s']:.3f}" if "tflops_per_s" in r else "-"
    fraction = f"{r['fraction_of_limit']:.2f}" if "fraction_of_limit" in r else "-"
    print(f"{lead} {r['s_per_iter']:>8.3f} {r['images_per_s']:>9.2f} {tflops:>8} {fraction:>8} {speedup:>11} "
          f"{mfu:>6} {mem:>8}", flush=True)


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", type=int, nargs="+", default=[128, 256], help="crop sizes in px (default: 128 256)")
    p.add_argument("--variants", nargs="+", default=["fp32", "fp32+cl", "fp32+sep", "bf16", "bf16+cl"],
                   metavar="VARIANT", help="cgx variants: precision[+cl][+compile][+cg][+sep] (default: %(default)s); "
                   "the fp32 eager baseline always runs")
    p.add_argument("--method", default="cyclegan",
                   help="the method whose step cgx's rows time (default: cyclegan). The fp32 eager baseline "
                   "is CycleGAN's reference: for another method it is left out, its rows are compared with its "
                   "first row and its FLOPs counted on its own step")
    p.add_argument("--batch", type=int, default=1, help="images per domain per iteration (default 1)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="a published peak TFLOP/s for the MFU column (default: known GPUs' bf16 dense peak; none "
                   "on CPU). The 'of limit' column is against the limit this run measures")
    p.add_argument("--limit-size", type=int, default=None,
                   help="side of the matrices that measure the limit (default: 4096 on CPU, 8192 on GPU)")
    p.add_argument("--iters", type=int, default=10, help="timed iterations per mode (default: 10)")
    p.add_argument("--warmup", type=int, default=3, help="untimed iterations first (default: 3)")
    p.add_argument("--threads", type=int, default=os.cpu_count(),
                   help=f"torch.set_num_threads (default: all cores, {os.cpu_count()} here)")
    p.add_argument("--clock", choices=list(CLOCKS), default="wall",
                   help="wall seconds (default), or the process's CPU seconds (CPU only): on a busy machine "
                   "with --threads 1 these hardly count the time other processes take; the limit is timed alike")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_step.json"),
                   help="where to write the results (default: %(default)s)")
    args = p.parse_args(argv)
    if args.clock == "cpu" and DEVICE.type == "cuda":
        p.error("--clock cpu times the host's work only: on a GPU use the wall clock (the default)")
    clock = CLOCKS[args.clock]
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__} on {DEVICE.type}, {args.threads} threads, CPU capability "
          f"{torch.backends.cpu.get_cpu_capability()}, bf16 hardware: {bf16_hardware()}\n")

    meta = {"torch": torch.__version__, "device": DEVICE.type, "threads": args.threads,
            "machine": platform.processor() or platform.machine(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "bf16_hardware": bf16_hardware(),
            "iters": args.iters, "warmup": args.warmup, "batch_size": args.batch,
            "device_name": torch.cuda.get_device_name() if DEVICE.type == "cuda" else platform.processor(),
            "peak_tflops": peak_tflops(args.peak_tflops), "method": args.method, "clock": args.clock}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    reference = args.method == "cyclegan"
    used = {"fp32"} if reference else set()  # the baseline's
    used |= {v.split("+")[0] for v in args.variants} - ({"fp16"} if DEVICE.type != "cuda" else set())
    precisions = [p for p in LIMIT_DTYPES if p in used]
    n = args.limit_size or (8192 if DEVICE.type == "cuda" else 4096)
    limits = measure_limits(precisions, n, clock)
    meta["limit"] = {"what": f"best matmul {n}x{n}, TFLOP/s", "fp32_tf32": limit_label("fp32") != "fp32",
                     "start": limits}
    print(f"limit (best {n}x{n} matmul, TFLOP/s{' per CPU second' if args.clock == 'cpu' else ''}): "
          f"{describe_limits(limits)}\n")
    rows: list[dict] = []
    print(HEADER)
    print("-" * len(HEADER))
    for size in args.sizes:
        try:
            flops = count_flops(size, args.batch, args.method)
        except Exception as e:  # a method the counter cannot follow: its rows stand without FLOPs
            print(f"(FLOPs not counted: {type(e).__name__}: {e})")
            flops = None
        prefix = "cgx" if reference else f"cgx-{args.method}"
        runs = ([(BASELINE, lambda: build_baseline(size, args.batch))] if reference else []) + [
            (f"{prefix}-{v}", lambda v=v: build_cgx(size, args.batch, v, args.method)) for v in args.variants]
        base = None
        for label, build in runs:
            r = {"size": size, "blocks": blocks_for(size), "flops_per_iter": flops,
                 **run_one(label, build, args.warmup, args.iters, clock)}
            base = base or r
            if "error" not in r and flops is not None:
                r["tflops_per_s"] = flops / r["s_per_iter"] / 1e12
                r["precision"] = precision_of(label)
                if r["precision"] in limits:
                    r["limit_tflops"] = limits[r["precision"]]
                    r["fraction_of_limit"] = r["tflops_per_s"] / r["limit_tflops"]
                if meta["peak_tflops"]:
                    r["mfu"] = r["tflops_per_s"] / meta["peak_tflops"]
            if "error" not in r and "error" not in base:
                r["speedup"] = base["s_per_iter"] / r["s_per_iter"]
            rows.append(r)
            print_row(r)
            # Written after every row, so that a run cut short still leaves what it measured.
            args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    end = measure_limits(precisions, n, clock)
    best = {p: max(limits[p], end[p]) for p in limits}
    meta["limit"].update(end=end, best=best)
    for r in rows:  # the final figures: against the best the machine showed in this run
        if r.get("precision") in best:
            r["limit_tflops"] = best[r["precision"]]
            r["fraction_of_limit"] = r["tflops_per_s"] / r["limit_tflops"]
    args.json.write_text(json.dumps({**meta, "results": rows}, indent=2))
    moved = max(abs(end[p] / limits[p] - 1) for p in limits) if limits else 0.0
    print(f"\nlimit at the end: {describe_limits(end)}")
    if moved > 0.1:
        print(f"The limit moved {100 * moved:.0f}% during the run (the machine's load changed); against the best "
              f"of both ({describe_limits(best)}) the rows read:\n")
        print(HEADER)
        print("-" * len(HEADER))
        for r in rows:
            print_row(r)
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
