#!/usr/bin/env bash
# The prepared GPU check: one command, one GPU, under 8 minutes (each stage has its own limit; they add
# up to 475 s), one JSON. With --dry-run (or CGX_GPU_CHECK_DRY=1), or on a machine without CUDA, it is a
# dry run: every stage runs end to end on the CPU at tiny sizes, writing the same JSON shape.
#
#   bash benchmarks/gpu_check.sh [--dry-run] [OUT_DIR]     (default OUT_DIR: benchmarks/results/gpu_check)
#
# Stages, each writing OUT_DIR/<stage>.log:
#   cuda_tests        pytest -m cuda tests/cuda (precisions, channels_last, compile and CUDA graphs against
#                     eager, no host sync in the step, inference); skipped by pytest without CUDA
#   bench_step_b1     bench_step.py, CycleGAN 256 px batch 1: the plain eager fp32 baseline, fp32, bf16,
#                     bf16+channels_last, + compile, + CUDA graphs (reduce-overhead): the 3x target
#   bench_step_b4     the same at batch 4, bf16 variants: the 25% MFU target
#   bench_step_cut, bench_step_fastcut   the CUT issue's methods, 256 px batch 1
#   bench_translate   inference images/s
#   compile_train, compile_resume   a compiled 1-process torchrun run (train.compile=true, the GPU's auto
#                     switches: channels_last, cudnn.benchmark, gradient_as_bucket_view) to a checkpoint,
#                     then its resume; the log's "cgx: compiled in" line is the warm-up
#   deepspeed_zero2   DeepSpeed ZeRO-2 for a few steps (bf16 on the GPU)
# and gathers every figure into OUT_DIR/gpu_check.json, with the two targets judged ("targets").
set -uo pipefail
cd "$(dirname "$0")/.."
DRY=${CGX_GPU_CHECK_DRY:-0}
if [ "${1:-}" = "--dry-run" ]; then DRY=1; shift; fi
OUT=${1:-benchmarks/results/gpu_check}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
if [ "$CUDA" = 0 ]; then DRY=1; fi
if [ "$DRY" = 1 ]; then export CUDA_VISIBLE_DEVICES=""; fi  # a dry run stays on the CPU
STATUS="$OUT/status.txt"
: > "$STATUS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...: run it, log it, record its status and wall time
  local name=$1 limit=$2; shift 2
  [ "$DRY" = 1 ] && limit=$((limit * 4))  # a small shared CPU compiles slowly
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$STATUS"
  tail -n 3 "$OUT/$name.log"
}

if [ "$DRY" = 0 ]; then
  $PY -c "import torch; print('GPU:', torch.cuda.get_device_name(), torch.__version__, 'CUDA', torch.version.cuda)"
  SIZE=256; ITERS=10; WARM=3; BATCHES="1 8"
  B1="fp32 bf16 bf16+cl bf16+cl+compile bf16+cl+cg"
  B4="bf16+cl bf16+cl+cg"
  METHODS="fp32 bf16+cl"
  TRAIN_SIZE=(data.load_size=72 data.crop_size=64); PRECISION=bf16
else
  echo "dry run on the CPU: every stage, tiny sizes (no GPU figures)"
  SIZE=32; ITERS=1; WARM=1; BATCHES="1"
  B1="fp32 bf16+cl"   # no compiled variant: a 64-wide ResNet compiles for many minutes on a small CPU
                      # (the compile_train and compile_resume stages compile, at the demo's size)
  B4="bf16+cl"
  METHODS="fp32 bf16+cl"
  TRAIN_SIZE=(data.load_size=36 data.crop_size=32); PRECISION=fp32
fi
THREADS=(); [ "$DRY" = 1 ] && THREADS=(--threads 1)  # two OpenMP threads on a shared small CPU crawl
BENCH=($PY benchmarks/bench_step.py --sizes $SIZE --iters $ITERS --warmup $WARM "${THREADS[@]}")

step cuda_tests 70 $PY -m pytest -q -m cuda tests/cuda
step bench_step_b1 100 "${BENCH[@]}" --variants $B1 --json "$OUT/bench_step_b1.json"
step bench_step_b4 80 "${BENCH[@]}" --batch 4 --variants $B4 --json "$OUT/bench_step_b4.json"
for method in cut fastcut; do
  step bench_step_$method 35 "${BENCH[@]}" --method $method --variants $METHODS --json "$OUT/bench_step_$method.json"
done
step bench_translate 20 $PY benchmarks/bench_translate.py --size $SIZE --batches $BATCHES "${THREADS[@]}" \
  --iters $ITERS --warmup $WARM --json "$OUT/bench_translate.json"

# A compiled training run to a checkpoint, then its resume (torchrun: NCCL on a GPU, gloo otherwise).
DATA="$OUT/demo_data"; RUN="$OUT/run_compiled"
rm -rf "$RUN" "$OUT/run_deepspeed"
$PY -m cgx.cli demo-data "$DATA" --n-train 16 --n-test 2 --size 72 > /dev/null
TRAIN=(recipes/demo.yaml data.source=folder "data.root=$DATA" data.workers=2 "${TRAIN_SIZE[@]}" train.ckpt_every=10
       train.log_every=5 train.image_every=0 train.progress=false model.generator.n_blocks=2 train.precision=$PRECISION)
TORCHRUN=($PY -m torch.distributed.run --standalone --nproc_per_node=1 -m cgx.run)
step compile_train 60 "${TORCHRUN[@]}" "${TRAIN[@]}" "train.run_dir=$RUN" train.steps=10 train.compile=true
step compile_resume 30 "${TORCHRUN[@]}" "${TRAIN[@]}" "train.run_dir=$RUN" train.steps=20 train.compile=true

# DeepSpeed ZeRO-2 (bf16 on the GPU; on the CPU its precision of the dry run)
step deepspeed_zero2 45 "${TORCHRUN[@]}" "${TRAIN[@]}" "train.run_dir=$OUT/run_deepspeed" train.steps=4 \
  distributed.strategy=deepspeed distributed.zero_stage=2

$PY - "$OUT" "$DRY" <<'PYEOF'
import json, re, sys
from pathlib import Path
out, dry = Path(sys.argv[1]), sys.argv[2] == "1"
report = {"dry_run": dry, "steps": {}}
for line in (out / "status.txt").read_text().splitlines():
    name, *fields = line.split()
    report["steps"][name] = dict(f.split("=", 1) for f in fields)
for name in ("bench_step_b1", "bench_step_b4", "bench_step_cut", "bench_step_fastcut", "bench_translate"):
    p = out / f"{name}.json"
    if p.is_file():
        report[name] = json.loads(p.read_text())
for name in ("compile_train", "compile_resume", "deepspeed_zero2"):
    p = out / f"{name}.log"
    if p.is_file():
        text = p.read_text()
        s = report["steps"].setdefault(name, {})
        s["resumed"] = "resumed from" in text
        m = re.findall(r"checkpoint \S*step_(\d+)", text)
        s["checkpoint_at"] = int(m[-1]) if m else None
        m = re.search(r"cgx: compiled in ([\d.]+) s", text)
        s["compiled_in_s"] = float(m.group(1)) if m else None
        m = re.search(r"speed: (.*)", text)
        s["speed"] = m.group(1).strip() if m else None

def rows(name):
    return [r for r in report.get(name, {}).get("results", []) if "error" not in r]

b1, b4 = rows("bench_step_b1"), rows("bench_step_b4")
best_mfu = max((r["mfu"] for r in b4 if "bf16" in r["mode"] and "mfu" in r), default=None)
best_b1 = max((r for r in b1 if "speedup" in r and r["mode"] != "baseline-fp32-eager"),
              key=lambda r: r["speedup"], default=None)
report["targets"] = {
    "mfu_bf16_256_batch4": {"best": best_mfu, "target": 0.25, "met": None if best_mfu is None else best_mfu >= 0.25},
    "batch1_vs_eager_fp32": {"best": best_b1 and best_b1["speedup"], "mode": best_b1 and best_b1["mode"],
                             "target": 3.0, "met": None if dry or best_b1 is None else best_b1["speedup"] >= 3.0},
}
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
bad = [n for n, s in report["steps"].items() if s.get("rc", "0") != "0"]
print(f"wrote {out / 'gpu_check.json'}; failed steps: {', '.join(bad) or 'none'}")
PYEOF
