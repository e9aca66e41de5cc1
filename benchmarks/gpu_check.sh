#!/usr/bin/env bash
# The prepared GPU check: one command, one GPU, under 8 minutes. On a machine without CUDA it is a dry
# run: every CUDA part is skipped (and says so) and the rest runs small, to show the script works.
#
#   bash benchmarks/gpu_check.sh [OUT_DIR]        (default OUT_DIR: benchmarks/results/gpu_check)
#
# It runs, each step under its own time limit, writing OUT_DIR/<step>.log:
#   1. the CUDA-marked tests (pytest -m cuda: fp32/bf16/fp16 training on the GPU, channels_last and
#      torch.compile against eager, inference)
#   2. benchmarks/bench_step.py at 256 px, 9 blocks, batch 1 and batch 4: fp32, bf16, bf16 +
#      channels_last, bf16 + compile; FLOPs per step, TFLOP/s, MFU (bf16 dense peak), peak memory
#   3. benchmarks/bench_translate.py at 256 px: images/s for fp32/bf16, channels_last, batch 1/8
#   4. a 1-process torchrun training run (NCCL on the GPU) with a checkpoint, then a resume
#   5. DeepSpeed ZeRO-2 bf16 for a few steps
# and gathers every figure into OUT_DIR/gpu_check.json.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${1:-benchmarks/results/gpu_check}
PY=${PYTHON:-.venv/bin/python}
mkdir -p "$OUT"
CUDA=$($PY -c "import torch; print(int(torch.cuda.is_available()))")
STATUS="$OUT/status.txt"
: > "$STATUS"
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-4} PYTHONUNBUFFERED=1

step() {  # step NAME SECONDS COMMAND...: run it, log it, record its status and wall time
  local name=$1 limit=$2; shift 2
  local t0=$SECONDS
  echo "== $name (limit ${limit}s)"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  echo "$name rc=$rc seconds=$((SECONDS - t0))" | tee -a "$STATUS"
  tail -n 4 "$OUT/$name.log"
}

if [ "$CUDA" = 1 ]; then
  $PY -c "import torch; print('GPU:', torch.cuda.get_device_name(), torch.__version__, 'CUDA', torch.version.cuda)"
  SIZES="256"; ITERS=10; WARM=3; BATCHES="1 8"
  VARIANTS="fp32 bf16 bf16+cl bf16+compile bf16+cl+compile"
else
  echo "no CUDA here: dry run (CUDA parts skipped, benchmarks small)"
  SIZES="64"; ITERS=1; WARM=1; BATCHES="1"
  VARIANTS="fp32 fp32+cl"
fi

# 1. CUDA-marked tests (they skip themselves without a GPU)
step cuda_tests 180 $PY -m pytest -q -m cuda tests/cuda

# 2. training step: batch 1 (latency) and batch 4 (the MFU target)
step bench_step_b1 150 $PY benchmarks/bench_step.py --sizes $SIZES --iters $ITERS --warmup $WARM \
  --variants $VARIANTS --json "$OUT/bench_step_b1.json"
step bench_step_b4 150 $PY benchmarks/bench_step.py --sizes $SIZES --iters $ITERS --warmup $WARM --batch 4 \
  --variants $VARIANTS --json "$OUT/bench_step_b4.json"

# 3. inference
step bench_translate 60 $PY benchmarks/bench_translate.py --size ${SIZES%% *} --batches $BATCHES \
  --iters $ITERS --warmup $WARM --json "$OUT/bench_translate.json"

# 4. torchrun (NCCL on a GPU, gloo otherwise): train to a checkpoint, then resume to the end
DATA="$OUT/demo_data"; RUN="$OUT/run_ddp"
rm -rf "$RUN"
$PY -m cgx.cli demo-data "$DATA" --n-train 16 --n-test 2 --size 64 > /dev/null
TRAIN=(recipes/demo.yaml data.source=folder "data.root=$DATA" data.workers=2 train.ckpt_every=5 train.log_every=5 train.image_every=0
       train.progress=false model.generator.n_blocks=2)
step ddp_train 90 $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m cgx.run "${TRAIN[@]}" \
  "train.run_dir=$RUN" train.steps=10
step ddp_resume 90 $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m cgx.run "${TRAIN[@]}" \
  "train.run_dir=$RUN" train.steps=15

# 5. DeepSpeed ZeRO-2 bf16
if [ "$CUDA" = 1 ]; then
  step deepspeed_zero2_bf16 150 $PY -m torch.distributed.run --standalone --nproc_per_node=1 -m cgx.run "${TRAIN[@]}" \
    "train.run_dir=$OUT/run_deepspeed" train.steps=6 distributed.strategy=deepspeed distributed.zero_stage=2 \
    train.precision=bf16
else
  echo "deepspeed_zero2_bf16 skipped=no-cuda" | tee -a "$STATUS"
fi

$PY - "$OUT" <<'PYEOF'
import json, re, sys
from pathlib import Path
out = Path(sys.argv[1])
report = {"steps": {}}
for line in (out / "status.txt").read_text().splitlines():
    name, *fields = line.split()
    report["steps"][name] = dict(f.split("=", 1) for f in fields)
for name in ("bench_step_b1", "bench_step_b4", "bench_translate"):
    p = out / f"{name}.json"
    if p.is_file():
        report[name] = json.loads(p.read_text())
for name in ("ddp_train", "ddp_resume", "deepspeed_zero2_bf16"):
    p = out / f"{name}.log"
    if p.is_file():
        text = p.read_text()
        report["steps"].setdefault(name, {})["resumed"] = "resumed from" in text
        m = re.findall(r"cgx: trained (\d+) steps", text)
        report["steps"][name]["trained_to"] = int(m[-1]) if m else None
(out / "gpu_check.json").write_text(json.dumps(report, indent=2))
bad = [n for n, s in report["steps"].items() if s.get("rc", "0") != "0"]
print(f"wrote {out / 'gpu_check.json'}; failed steps: {', '.join(bad) or 'none'}")
PYEOF
