#!/usr/bin/env bash
# The FCN score of CycleGAN and CUT with and without semantic consistency on the labelled demo data, same recipe,
# steps and seed (recipes/{cyclegan,cut}_semantic_demo.yaml; "without": method.semantic=null), judged by one
# reference segmenter trained on domain B's real images (python -m cgx.eval.reference_segmenter). The runs with
# it start their segmenter from one pretrained on domain A (method.semantic.init_from, pretrain_steps=0), so that
# both runs train their generators for the same STEPS steps.
#   benchmarks/semantic_fcn.sh OUT [STEPS]      (default 600 steps; a summary in OUT/summary.md, grids in OUT/)
set -euo pipefail
OUT=${1:?usage: benchmarks/semantic_fcn.sh OUT [STEPS]}
STEPS=${2:-600}
DATA=$OUT/data
mkdir -p "$OUT"
cgx demo-data --labels "$DATA" --n-test 50
[ -f "$OUT/reference_B.pt" ] || python -m cgx.eval.reference_segmenter "$DATA/trainB" "$OUT/reference_B.pt" \
  --classes 4 --steps 600 --width 8
[ -f "$OUT/pretrained_A.pth" ] || python -m cgx.eval.reference_segmenter "$DATA/trainA" "$OUT/pretrained_A.pth" \
  --classes 4 --steps 150 --width 8 --state-dict
train() {  # one run, one thread (the four train side by side)
  local method=$1 v=$2 run=$OUT/${1}_$2 extra=()
  extra=(method.semantic.init_from="$OUT/pretrained_A.pth" method.semantic.pretrain_steps=0)
  [ "$v" = without ] && extra=(method.semantic=null)
  rm -rf "$run"
  OMP_NUM_THREADS=1 python -m cgx.run "recipes/${method}_semantic_demo.yaml" data.root="$DATA" train.run_dir="$run" \
    train.steps="$STEPS" train.progress=false "${extra[@]}" > "$OUT/train_${method}_$v.log" 2>&1
}
for method in cyclegan cut; do
  for v in with without; do
    [ -f "$OUT/${method}_$v/checkpoints/step_$(printf %08d "$STEPS")/train.pt" ] || train $method $v &
  done
done
wait
for method in cyclegan cut; do
  for v in with without; do
    run=$OUT/${method}_$v
    [ -f "$run/checkpoints/step_$(printf %08d "$STEPS")/train.pt" ] || { echo "$run did not finish: $OUT/train_${method}_$v.log"; exit 1; }
    cgx grid "$run" --a "$DATA/testA" --b "$DATA/testB" --n 8 -o "$OUT/grid_${method}_$v.png"
    [ -f "$run/eval_AtoB.json" ] || cgx eval "$run" --a "$DATA/testA" --b "$DATA/testB" --direction AtoB \
      --labels "$DATA/testA_labels" --segmenter "$OUT/reference_B.pt" --output "$run/eval_AtoB.json"
  done
done
python - "$OUT" <<'PY'
import json, sys
from pathlib import Path
out = Path(sys.argv[1])
rows = ["| method | semantic consistency | mean IoU | pixel acc. | class acc. | FID A->B |", "| --- | --- | --- | --- | --- | --- |"]
for method in ("cyclegan", "cut"):
    for v in ("with", "without"):
        r = json.loads((out / f"{method}_{v}" / "eval_AtoB.json").read_text())
        s = r["scores"]["AtoB"]
        rows.append(f"| {method} | {v} | {s['mean_iou']:.3f} | {s['pixel_accuracy']:.3f} | {s['class_accuracy']:.3f} | {s['FID']:.1f} |")
(out / "summary.md").write_text("\n".join(rows) + "\n")
print("\n".join(rows))
PY
