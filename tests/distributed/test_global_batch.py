"""One run, whatever the world size: the global batch met by gradient accumulation, the global sample
order and a mid-epoch resume on another world size (gloo on CPU, tiny networks).

Samples and their augmentation are compared through the test hook ``CGX_TRACE_SAMPLES``
(cgx.data.trace): per trained micro-batch, its place in the global batch and, per sample, the file
index, the augmentation seed and a digest of the augmented image. Image pools are off (``size: 0``):
this branch does not move pools between world sizes (the elastic branch does), and a pool drawn per
rank would make ranks differ by design.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import assert_clean_exit, load_weights, torchrun

from cgx.config import config_from_dict
from cgx.data import build_source
from cgx.data.trace import ENV
from cgx.run import EXIT_STOPPED
from cgx.run import main as run_main

pytestmark = pytest.mark.multiprocess

COMMON = {"optim": {"name": "sgd", "lr": 0.01}, "buffer": {"name": "image_pool", "size": 0},
          "train": {"batch_size": 1, "ckpt_every": 2}}
"""SGD, no pool: as tests/distributed/test_ddp.py's parity test (Adam's first steps are sign-like and
would hide a wrong gradient scale; a pool makes ranks differ)."""

TOLERANCE = 1e-5
"""Max weight difference allowed between 1 x 4, 2 x 2 and 4 x 1 after 2 SGD steps. The sums differ
only in order: DDP all-reduces the ranks' gradients (gloo sums them in its own order), accumulation
adds micro-batch gradients into .grad one after the other, and 1/k and 1/world are applied at
different places, so float32 rounding differs: measured 2.6e-8 after one step, 2.8e-7 after two,
1.4e-5 to 5e-5 after three (these tiny GAN nets amplify float noise 10-100x a step, which is why
weights are compared at step 2; one step from the same weights, 4 micro-batches and one batch of 4
agree to 3e-8). A wrong sample, a missing 1/k or a missed reduction moves weights by ~lr * grad = 1e-3."""


def traced(run: Path) -> dict:
    """{(step, micro-batch in the global batch): samples} from every rank's trace file of ``run``."""
    out = {}
    for path in sorted(run.parent.glob(f"{run.name}.trace.rank*")):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            key = (item["step"], item["m"])
            assert key not in out, f"{path.name}: step {key[0]} micro-batch {key[1]} trained twice"
            out[key] = item["samples"]
    return out


def train(make_recipe, tmp_path, monkeypatch, name: str, ranks: int, changes: dict, steps: int,
          stop: bool = False) -> Path:
    """Train (or resume) ``name`` on ``ranks`` processes (1: in this process), tracing samples; ``stop``:
    with a stop request waiting (the run's STOP file), so that it stops at once, mid-run."""
    run = tmp_path / name
    if stop:
        run.mkdir(exist_ok=True)
        (run / "STOP").touch()
    recipe = make_recipe({**COMMON, "train": {**COMMON["train"], "run_dir": str(run), "steps": steps,
                                               **changes.get("train", {})},
                          **{k: v for k, v in changes.items() if k != "train"}}, name=f"{name}.yaml")
    monkeypatch.setenv(ENV, str(tmp_path / f"{name}.trace"))
    if ranks == 1:
        assert run_main([str(recipe)]) == (EXIT_STOPPED if stop else 0)
    else:
        proc = torchrun(ranks, str(recipe))
        if stop:  # torchrun's own exit code is 1 for any worker's exit but 0: STOPPED says it stopped
            assert "terminate called" not in proc.stderr, proc.stderr[-3000:]
        else:
            assert_clean_exit(proc)
    assert (run / "STOPPED").exists() == stop, (proc.stdout + proc.stderr)[-3000:] if ranks > 1 else ""
    return run


@pytest.mark.long
def test_same_run_on_one_two_and_four_ranks(make_recipe, tmp_path, monkeypatch):
    """Global batch 4: 1 process x 4 accumulation, 2 ranks x 2, 4 ranks x 1 train the same 3 steps
    (8 images: 2 steps an epoch, so step 3 is in the second epoch) on the same samples with the same
    augmentation, to the same weights within TOLERANCE."""
    runs = {}
    for ranks in (1, 2, 4):
        runs[ranks] = train(make_recipe, tmp_path, monkeypatch, f"r{ranks}", ranks,
                            {"train": {"global_batch_size": 4}}, steps=3)
    traces = {ranks: traced(run) for ranks, run in runs.items()}
    assert sorted(traces[1]) == [(s, m) for s in range(3) for m in range(4)]
    positions = [sample["pos"] for s in range(2) for m in range(4) for sample in traces[1][s, m]]
    assert sorted(positions) == list(range(8))  # the first epoch: every position once
    weights = {ranks: load_weights(run, step=2) for ranks, run in runs.items()}
    for ranks in (2, 4):
        assert traces[ranks] == traces[1], f"{ranks} ranks read other samples or augmented them otherwise"
        worst = max((weights[ranks][k] - weights[1][k]).abs().max().item() for k in weights[1])
        print(f"1x4 vs {ranks}x{4 // ranks}: samples equal, max weight difference {worst:.2e}")
        assert worst <= TOLERANCE


@pytest.mark.parametrize("first, then, global_batch", [pytest.param(2, 1, 2, id="2to1"),
                                                        pytest.param(1, 3, 3, id="1to3", marks=pytest.mark.long)])
def test_stopped_mid_epoch_resumes_on_another_world_size(make_recipe, tmp_path, monkeypatch, first, then,
                                                         global_batch):
    """A run stopped mid-epoch (a stop request: 1 rank stops after step 1, 2 ranks one step later, as
    their vote arrives) and resumed on another world size trains exactly the samples of an
    uninterrupted run, none twice, none skipped, and into the next epoch."""
    steps = 5 if global_batch == 2 else 3  # 8 images: 4 (global batch 2) or 2 (3) steps an epoch
    changes = {"train": {"global_batch_size": global_batch}}
    straight = traced(train(make_recipe, tmp_path, monkeypatch, "straight", 1, changes, steps))
    run = train(make_recipe, tmp_path, monkeypatch, "resumed", first, changes, steps, stop=True)
    stopped_at = len({s for s, _ in traced(run)})
    assert 0 < stopped_at < steps
    assert stopped_at < 4 if global_batch == 2 else stopped_at < 2  # mid-epoch
    train(make_recipe, tmp_path, monkeypatch, "resumed", then, changes, steps)
    assert traced(run) == straight  # traced() also fails on a micro-batch trained twice


def test_sources_read_the_same_samples_split_any_way(tmp_path, demo_shards, demo_data, monkeypatch):
    """The sources alone (no training), folders and shards, with loader workers: micro-batch m of a
    step is the same samples, equally augmented, whether 1, 2 or 4 ranks x 4, 2 or 1 slots read it,
    with 2 loader workers or none, and a source built at a later step (a resume) continues the same
    sequence."""
    monkeypatch.setenv(ENV, str(tmp_path / "unused"))
    shards = {"source": "shards", "shards_a": str(demo_shards / "trainA-{000000..000002}.tar"),
              "shards_b": str(demo_shards / "trainB-{000000..000002}.tar")}
    by_source = {}
    for data in ({"root": str(demo_data), "workers": 2}, {"root": str(demo_data), "workers": 0},
                 {**shards, "workers": 2}, {**shards, "workers": 0}):
        cfg = config_from_dict({"data": {"load_size": 36, "crop_size": 32, **data}}).data
        seen = by_source.setdefault(cfg.source, {})  # the same for 2 loader workers and none
        for world in (1, 2, 4):
            k = 4 // world
            for rank in range(world):
                for start in (0, 1):
                    source = build_source(cfg, batch=1, rank=rank, world=world, seed=7, accumulation=k)
                    try:
                        batches = source.batches(start, 3)
                        for i, batch in enumerate(batches):
                            step, slot = divmod(start * k + i, k)
                            key = (step, rank * k + slot)
                            assert seen.setdefault(key, batch["trace"]) == batch["trace"], (data, world, key)
                    finally:
                        source.close()
        assert sorted(seen) == [(s, m) for s in range(3) for m in range(4)]
        ids = [sample["A"]["id"] for s in range(2) for m in range(4) for sample in seen[s, m]]
        assert len(set(map(str, ids))) == 8  # 8 samples an epoch of domain A: each once
