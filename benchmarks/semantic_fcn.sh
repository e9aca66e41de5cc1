#!/usr/bin/env bash
# The FCN score of CycleGAN and CUT with and without semantic consistency on the labelled demo data, same recipe,
# steps and seed (recipes/{cyclegan,cut}_semantic_demo.yaml; "without": method.semantic=null), judged by one
# reference segmenter trained on domain B's real images (python -m cgx.eval.reference_segmenter). The runs with
# it start their segmenter from one pretrained on domain A (method.semantic.init_from, pretrain_steps=0), so that
# both runs train their generators for the same STEPS steps.
# With several seeds (train.seed; the data and the judge stay the same) each row is the mean over the seeds, with
# the range and each seed's value beside it.
#   benchmarks/semantic_fcn.sh OUT [STEPS [SEED ...]]   (default 600 steps, seed 0; a summary in OUT/summary.md,
#                                                        grids in OUT/)
set -euo pipefail
OUT=${1:?usage: benchmarks/semantic_fcn.sh OUT [STEPS [SEED ...]]}
STEPS=${2:-600}
shift $(( $# < 2 ? $# : 2 ))
SEEDS=("${@:-0}")
[ ${#SEEDS[@]} -gt 0 ] || SEEDS=(0)
DATA=$OUT/data
mkdir -p "$OUT"
cgx demo-data --labels "$DATA" --n-test 50
[ -f "$OUT/reference_B.pt" ] || python -m cgx.eval.reference_segmenter "$DATA/trainB" "$OUT/reference_B.pt" \
  --classes 4 --steps 600 --width 8
[ -f "$OUT/pretrained_A.pth" ] || python -m cgx.eval.reference_segmenter "$DATA/trainA" "$OUT/pretrained_A.pth" \
  --classes 4 --steps 150 --width 8 --state-dict
name() {  # a run's folder name: seed 0 alone keeps the single-seed names
  if [ "${#SEEDS[@]}" = 1 ] && [ "${SEEDS[0]}" = 0 ]; then echo "${1}_$2"; else echo "${1}_${2}_s$3"; fi
}
train() {  # one run, one thread (the four of a seed train side by side)
  local method=$1 v=$2 seed=$3 run=$OUT/$(name "$1" "$2" "$3") extra=()
  extra=(method.semantic.init_from="$OUT/pretrained_A.pth" method.semantic.pretrain_steps=0)
  [ "$v" = without ] && extra=(method.semantic=null)
  rm -rf "$run"
  OMP_NUM_THREADS=1 python -m cgx.run "recipes/${method}_semantic_demo.yaml" data.root="$DATA" train.run_dir="$run" \
    train.steps="$STEPS" train.seed="$seed" train.progress=false "${extra[@]}" \
    > "$OUT/train_$(name "$method" "$v" "$seed").log" 2>&1
}
last=step_$(printf %08d "$STEPS")
for seed in "${SEEDS[@]}"; do
  for method in cyclegan cut; do
    for v in with without; do
      [ -f "$OUT/$(name $method $v "$seed")/checkpoints/$last/train.pt" ] || train $method $v "$seed" &
    done
  done
  wait
done
for seed in "${SEEDS[@]}"; do
  for method in cyclegan cut; do
    for v in with without; do
      n=$(name $method $v "$seed") run=$OUT/$(name $method $v "$seed")
      [ -f "$run/checkpoints/$last/train.pt" ] || { echo "$run did not finish: $OUT/train_$n.log"; exit 1; }
      [ -f "$OUT/grid_$n.png" ] || cgx grid "$run" --a "$DATA/testA" --b "$DATA/testB" --n 8 -o "$OUT/grid_$n.png"
      [ -f "$run/eval_AtoB.json" ] || cgx eval "$run" --a "$DATA/testA" --b "$DATA/testB" --direction AtoB \
        --labels "$DATA/testA_labels" --segmenter "$OUT/reference_B.pt" --output "$run/eval_AtoB.json"
    done
  done
done
names=()
for seed in "${SEEDS[@]}"; do names+=("$seed"); done
python - "$OUT" "${#SEEDS[@]}" "${names[@]}" <<'PY'
import json, sys
from pathlib import Path
out, single, seeds = Path(sys.argv[1]), sys.argv[2] == "1" and sys.argv[3] == "0", sys.argv[3:]
keys = [("mean_iou", "mean IoU", 3), ("pixel_accuracy", "pixel acc.", 3), ("class_accuracy", "class acc.", 3),
        ("FID", "FID A->B", 1)]
head = "| method | semantic consistency | seeds | " + " | ".join(k[1] for k in keys) + " |"
rows = [head, "|" + " --- |" * (3 + len(keys))]
for method in ("cyclegan", "cut"):
    for v in ("with", "without"):
        runs = [out / (f"{method}_{v}" if single else f"{method}_{v}_s{s}") for s in seeds]
        scores = [json.loads((r / "eval_AtoB.json").read_text())["scores"]["AtoB"] for r in runs]
        cells = []
        for key, _, digits in keys:
            vals = [s[key] for s in scores]
            mean = sum(vals) / len(vals)
            cells.append(f"{mean:.{digits}f}" if len(vals) == 1 else
                         f"{mean:.{digits}f} ({min(vals):.{digits}f}..{max(vals):.{digits}f}; "
                         + ", ".join(f"{x:.{digits}f}" for x in vals) + ")")
        rows.append(f"| {method} | {v} | {','.join(seeds)} | " + " | ".join(cells) + " |")
(out / "summary.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
