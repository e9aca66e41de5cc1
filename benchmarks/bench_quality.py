"""The ground-truth quality benchmark: methods and recipes trained unpaired on a synthetic task whose
true translation is known, then scored against it.

    python benchmarks/bench_quality.py                                  # CPU preset, every config, seeds 1,2,3
    python benchmarks/bench_quality.py --preset gpu --parallel 1        # 256 px
    python benchmarks/bench_quality.py --configs cyclegan,cut --seeds 1,2 --steps 100 --size 32 --out runs/smoke
    make bench-quality                                                  # the CPU preset

The data (``quality_scenes.py``): scenes of textured backgrounds and objects of five classes drawn as a
schematic (A) and a rendering (B); the training split unpaired (A and B from disjoint scene streams),
the test split paired. Each config (a recipe in ``benchmarks/quality/``) is run through
``cgx sweep --seeds ... --eval-pairs DATA/test``: every seed a normal run folder, scored with
``cgx eval --pairs`` per direction (L1, PSNR, SSIM against the hidden truth; FID/KID of the
translations against the true targets). The table (``OUT/results.md``, ``.json``) gives each
config's mean and (min..max) over its seeds, and the time per step.

LPIPS is not scored: the pip package ``lpips`` ships only its linear heads; its AlexNet/VGG backbones
come from torchvision's download, which cgx never does (no network in tests or benchmarks).

Presets (``--size``/``--steps``/... override a preset's value):
  cpu: 64 px, the demo's small networks (ngf 16, 3 residual blocks), 4000 steps, 400 scenes a side,
       100 test pairs, fp32; sized for under an hour a run on 2 cores (make demo trains these networks
       at 10.4 steps/s in bf16 on 2 processes; not yet timed at this preset on a quiet machine).
  gpu: 256 px, the paper's networks (ngf 64, 9 blocks, NCE layers 0,4,8,12,16), 20000 steps, 1000
       scenes a side, 200 test pairs.
The ``cyclegan_plus`` config (TTUR + DiffAugment + EMA) uses recipe keys of the groups and augment
branches (``optim.discriminators``, ``augment``): it runs only where those are merged.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import yaml

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from quality_scenes import write_splits  # noqa: E402

CONFIGS = ("cyclegan", "cut", "fastcut", "cyclegan_plus")
RECIPES = HERE / "quality"
PRESETS = {
    "cpu": {"size": 64, "steps": 4000, "n_train": 400, "n_test": 100, "model": {}, "nce_layers": None},
    "gpu": {"size": 256, "steps": 20000, "n_train": 1000, "n_test": 200,
            "model": {"generator": {"ngf": 64, "n_blocks": 9}, "discriminator": {"ndf": 64}},
            "nce_layers": [0, 4, 8, 12, 16]},
}
SHOWN = ("L1", "PSNR", "SSIM", "FID", "KID_mean")


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def bench_recipe(config: str, preset: dict, data: Path) -> dict:
    """The config's recipe with the preset applied: size, steps (decay over the second half), data, networks."""
    recipe = yaml.safe_load((RECIPES / f"{config}.yaml").read_text())
    size, steps = preset["size"], preset["steps"]
    changes = {"data": {"root": str(data), "load_size": size + size // 8, "crop_size": size},
               "optim": {"decay_steps": steps // 2},
               "train": {"steps": steps, "ckpt_every": max(1, steps // 4), "log_every": max(1, min(50, steps // 10))},
               "model": preset["model"]}
    if preset["nce_layers"] and "nce_layers" in recipe["method"]:
        changes["method"] = {"nce_layers": preset["nce_layers"]}
    return merge(recipe, changes)


def sweep_command(recipe: Path, out: Path, data: Path, seeds: str, parallel: int, max_images: int | None) -> list[str]:
    cmd = [sys.executable, "-m", "cgx.cli", "sweep", str(recipe), "--seeds", seeds, "--out", str(out),
           "--eval-pairs", str(data / "test"), "--parallel", str(parallel)]
    return cmd + (["--max-images", str(max_images)] if max_images else [])


def cell(stats: dict | None) -> str:
    if not stats:
        return "-"
    g = lambda v: f"{v:.4g}"  # noqa: E731
    return g(stats["mean"]) if stats["n"] == 1 else f"{g(stats['mean'])} ({g(stats['min'])}..{g(stats['max'])})"


def table(results: dict[str, dict]) -> str:
    """One row per config from each sweep's results.json (its one configuration: the seeds)."""
    metrics = [f"{d} {m}" for d in ("AtoB", "BtoA") for m in SHOWN] + ["s/step"]
    arrows = {m: ("↑" if m.split()[-1] in ("PSNR", "SSIM") else "↓") if m != "s/step" else "" for m in metrics}
    lines = ["| config | seeds | " + " | ".join(f"{m} {arrows[m]}".strip() for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for name, record in results.items():
        configs = record.get("configurations") or [{}]
        stats = configs[0].get("metrics", {})
        seeds = ",".join(p["seed"] or "-" for p in configs[0].get("points", []))
        failed = f" ({len(record['failed'])} failed)" if record.get("failed") else ""
        lines.append(f"| {name}{failed} | {seeds or 'none'} | " + " | ".join(cell(stats.get(m)) for m in metrics) + " |")
    return "\n".join(lines) + "\n\nEach cell: mean over the seeds (min..max). Scores against the hidden ground truth " \
                              "of the paired test split; s/step: median logged training step time.\n"


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog="\n\n".join(__doc__.split("\n\n")[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    p.add_argument("--configs", default=",".join(CONFIGS),
                   help=f"comma-separated, of {', '.join(CONFIGS)} (default: all)")
    p.add_argument("--seeds", default="1,2,3", help="train.seed values of every config (default 1,2,3)")
    p.add_argument("--out", default=None, help="folder of the sweeps and the table (default runs/bench_quality_PRESET)")
    p.add_argument("--data", default=None, help="benchmark data folder (default data/bench_quality_SIZE)")
    p.add_argument("--parallel", type=int, default=1, help="runs at a time within a config's sweep (default 1)")
    p.add_argument("--size", type=int, default=None, help="image size (overrides the preset)")
    p.add_argument("--steps", type=int, default=None, help="training steps (overrides the preset)")
    p.add_argument("--n-train", type=int, default=None, help="training scenes a side (overrides the preset)")
    p.add_argument("--n-test", type=int, default=None, help="test pairs (overrides the preset)")
    p.add_argument("--max-images", type=int, default=None, help="score only the first N test pairs")
    p.add_argument("--dry-run", action="store_true", help="write the data and recipes, print the sweep commands")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    preset = dict(PRESETS[args.preset])
    for key in ("size", "steps", "n_train", "n_test"):
        if getattr(args, key) is not None:
            preset[key] = getattr(args, key)
    configs = [c.strip() for c in args.configs.split(",") if c.strip()]
    unknown = [c for c in configs if c not in CONFIGS]
    if unknown:
        print(f"bench_quality: unknown config {unknown[0]!r}; accepted: {', '.join(CONFIGS)}", file=sys.stderr)
        return 2
    data = Path(args.data or f"data/bench_quality_{preset['size']}")
    out = Path(args.out or f"runs/bench_quality_{args.preset}")
    write_splits(data, n_train=preset["n_train"], n_test=preset["n_test"], size=preset["size"])
    print(f"bench_quality: data in {data} (trainA/ trainB/ unpaired, test/ {preset['n_test']} aligned pairs, "
          f"{preset['size']} px)")
    (out / "recipes").mkdir(parents=True, exist_ok=True)
    results, failed = {}, 0
    for config in configs:
        recipe = out / "recipes" / f"{config}.yaml"
        recipe.write_text(f"# benchmarks/quality/{config}.yaml with bench_quality.py's {args.preset} preset\n"
                          + yaml.safe_dump(bench_recipe(config, preset, data.resolve()), sort_keys=False))
        cmd = sweep_command(recipe, out / config, data, args.seeds, args.parallel, args.max_images)
        print(f"bench_quality: {config}: {shlex.join(cmd)}", flush=True)
        if args.dry_run:
            continue
        code = subprocess.run(cmd, env={**os.environ, "PYTHONUNBUFFERED": "1"}).returncode
        failed += code != 0
        record = out / config / "results.json"
        if record.is_file():
            results[config] = json.loads(record.read_text())
    if args.dry_run:
        return 0
    text = table(results)
    (out / "results.md").write_text(text)
    (out / "results.json").write_text(json.dumps({"preset": args.preset, **preset, "seeds": args.seeds,
                                                  "configs": results}, indent=2) + "\n")
    print(text + f"bench_quality: table in {out / 'results.md'}; each config's sweep page: {out}/CONFIG/index.html")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
