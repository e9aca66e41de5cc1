"""Does ``train.compile`` pay in a real run? Trains a recipe (default: the demo, ``recipes/demo.yaml``, on
freshly generated demo data) for --steps steps eagerly and compiled, per precision, each in a fresh
process with an empty inductor cache (a cold warm-up, as a user's first run), and reports per mode:
the warm-up (the compiling steps, as the trainer logs it), the steady s/step of the training step
(median of the steps after --skip), and for the compiled rows the speedup and the steps after which
the compiled run is ahead (warm-up cost / time saved per step).

    .venv/bin/python benchmarks/bench_compile.py --precisions bf16 fp32 --steps 60
    .venv/bin/python benchmarks/bench_compile.py --recipe recipes/cyclegan_256.yaml data.root=... --steps 100

Only the method step is timed (no data loading, logging or checkpoints: ckpt_every is the run's
length). Numbers go to stdout and --json.

On a busy machine the load moves sequential runs by up to 3x; ``--alternate`` instead builds the
eager and the compiled step (``wire_step``, the trainer's own step) in one process and times them
alternately on the same random images (--steps each, after 5 of each untimed), so that the load
falls on both alike (the ratio in the README comes from it):

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_compile.py --alternate --precisions fp32 bf16
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def one(recipe: str | None, overrides: list[str], out: Path) -> None:
    """In this process: train and write the per-step times and the warm-up line to ``out``."""
    import torch

    from cgx.config import load_config
    from cgx.plugins import Registry
    from cgx.train.trainer import Trainer

    trainer = Trainer(load_config(recipe, overrides), registry=Registry())
    times, inner = [], trainer.method_step
    sync = torch.cuda.synchronize if trainer.device.type == "cuda" else (lambda: None)

    def timed(a, b):
        t0 = time.perf_counter()
        result = inner(a, b)
        sync()
        times.append(time.perf_counter() - t0)
        return result

    trainer.method_step = timed
    lines = []
    import cgx.train.logger as logger

    original = logger.Logger.print
    logger.Logger.print = lambda self, msg: (lines.append(msg), original(self, msg))[1]
    try:
        trainer.fit()
    finally:
        trainer.close()
    warm = next((line for line in lines if line.startswith("cgx: compiled in")), None)
    out.write_text(json.dumps({"times": times, "warm_up_line": warm}))


def alternate(recipe: str, overrides: list[str], precision: str, steps: int, mode: str) -> dict:
    """Eager and compiled steps of ``recipe`` timed alternately in this process."""
    import torch

    from cgx import plugins
    from cgx.config import load_config
    from cgx.distributed import WorldInfo, build_strategy
    from cgx.train.wiring import wire_step

    step = {}
    for compiled in (False, True):
        cfg = load_config(recipe, [*overrides, f"train.precision={precision}", f"train.compile={str(compiled).lower()}",
                                   f"train.compile_mode={mode}"])
        s = build_strategy(cfg.distributed, cfg.train, WorldInfo())
        step[compiled] = wire_step(cfg, plugins.default_registry(), s).step
        size, batch = cfg.data.crop_size, cfg.train.batch_size
    a, b = (torch.rand(batch, 3, size, size, device=s.device) * 2 - 1 for _ in range(2))
    sync = torch.cuda.synchronize if s.device.type == "cuda" else (lambda: None)
    t0 = time.perf_counter()
    step[True](a, b)
    sync()
    first = time.perf_counter() - t0
    for _ in range(5):
        step[False](a, b), step[True](a, b)
    times = {False: [], True: []}
    for _ in range(steps):
        for compiled in (False, True):
            t0 = time.perf_counter()
            step[compiled](a, b)
            sync()
            times[compiled].append(time.perf_counter() - t0)
    eager, compiled = statistics.median(times[False]), statistics.median(times[True])
    return {"mode": f"{precision} alternate", "eager_s_per_step": eager, "compiled_s_per_step": compiled,
            "speedup": eager / compiled, "first_compiled_step_s": first,
            "ahead_after_steps": first / (eager - compiled) if eager > compiled else None}


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", default=str(REPO / "recipes/demo.yaml"))
    p.add_argument("overrides", nargs="*", help="recipe overrides (key=value)")
    p.add_argument("--precisions", nargs="+", default=["bf16", "fp32"])
    p.add_argument("--steps", type=int, default=60, help="training steps per mode (default 60)")
    p.add_argument("--skip", type=int, default=5, help="steps left out of the steady figure (default 5)")
    p.add_argument("--mode", default="default", help="train.compile_mode of the compiled rows")
    p.add_argument("--json", type=Path, default=Path("benchmarks/results/bench_compile.json"))
    p.add_argument("--alternate", action="store_true",
                   help="time eager and compiled steps alternately in one process (see above)")
    p.add_argument("--_one", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args._one:
        return one(args.recipe, args.overrides, args._one)
    if args.alternate:
        rows = []
        for precision in args.precisions:
            rows.append(alternate(args.recipe, args.overrides, precision, args.steps, args.mode))
            r = rows[-1]
            ahead = f"{r['ahead_after_steps']:.0f} steps" if r["ahead_after_steps"] else "never"
            print(f"{precision}: eager {r['eager_s_per_step']:.4f} s/step, compiled {r['compiled_s_per_step']:.4f} "
                  f"s/step, {r['speedup']:.2f}x; first compiled step {r['first_compiled_step_s']:.1f} s; "
                  f"ahead after {ahead}", flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"recipe": args.recipe, "alternate": True, "results": rows}, indent=2))
        return print(f"wrote {args.json}")

    rows = []
    with tempfile.TemporaryDirectory(prefix="cgx-bench-compile-") as tmp:
        tmp = Path(tmp)
        extra = list(args.overrides)
        if args.recipe.endswith("demo.yaml") and not any(o.startswith("data.") for o in extra):
            from cgx.data.demo import generate

            generate(tmp / "data", n_train=32, n_test=2, size=64)
            extra += ["data.source=folder", f"data.root={tmp / 'data'}", "data.workers=1"]
        print(f"{args.recipe} {' '.join(args.overrides)}: {args.steps} steps per mode; torch threads "
              f"{os.environ.get('OMP_NUM_THREADS', 'default')}")
        header = f"{'mode':<16} {'warm-up s':>9} {'steady s/step':>13} {'speedup':>8} {'ahead after':>12}"
        print(header + "\n" + "-" * len(header), flush=True)
        for precision in args.precisions:
            eager = None
            for compiled in (False, True):
                name = f"{precision}{'+compile' if compiled else ''}"
                result = tmp / f"{name}.json"
                overrides = [*extra, f"train.run_dir={tmp / name}", f"train.steps={args.steps}",
                             f"train.precision={precision}", f"train.compile={str(compiled).lower()}",
                             f"train.compile_mode={args.mode}", f"train.ckpt_every={args.steps}",
                             "train.image_every=0", "train.progress=false", f"train.log_every={args.steps}",
                             "eval.every=0"]
                env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": str(tmp / f"inductor-{name}")}
                proc = subprocess.run([sys.executable, __file__, "--recipe", args.recipe, "--_one", str(result),
                                       *overrides], cwd=REPO, env=env, capture_output=True, text=True)
                if proc.returncode != 0:
                    print(f"{name:<16} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1][:120]}")
                    continue
                data = json.loads(result.read_text())
                times = data["times"]
                steady = statistics.median(times[args.skip:])
                row = {"mode": name, "steps": len(times), "steady_s_per_step": steady, "times_s": times,
                       "first_step_s": times[0], "warm_up_line": data["warm_up_line"]}
                if compiled and eager is not None:
                    # the first steps' time beyond the steady rate, each run's own (eager has a little too)
                    extra_c = sum(times[:args.skip]) - args.skip * steady
                    extra_e = sum(eager["times_s"][:args.skip]) - args.skip * eager["steady_s_per_step"]
                    saved = eager["steady_s_per_step"] - steady
                    row["speedup"] = eager["steady_s_per_step"] / steady
                    row["warm_up_s"] = extra_c - extra_e
                    row["ahead_after_steps"] = row["warm_up_s"] / saved if saved > 0 else None
                else:
                    eager = row
                rows.append(row)
                warm = f"{row['warm_up_s']:.1f}" if "warm_up_s" in row else "-"
                speed = f"{row['speedup']:.2f}x" if "speedup" in row else "-"
                ahead = row.get("ahead_after_steps")
                ahead = f"{ahead:.0f}" if ahead else ("never" if compiled else "-")
                print(f"{name:<16} {warm:>9} {steady:>13.4f} {speed:>8} {ahead:>12}", flush=True)
                if data["warm_up_line"]:
                    print(f"  {data['warm_up_line']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"recipe": args.recipe, "overrides": args.overrides, "steps": args.steps,
                                     "results": rows}, indent=2))
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
