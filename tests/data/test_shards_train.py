"""Training from shards end to end: 2 ranks under torchrun, a corrupt sample counted in TensorBoard."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from conftest import assert_same_weights, load_weights, torchrun

pytestmark = pytest.mark.multiprocess


def corrupt_copy(demo_shards: Path, out: Path) -> Path:
    """demo_shards with the second sample of trainA-000001.tar replaced by garbage (same names, new index)."""
    import tarfile

    import webdataset as wds

    out.mkdir()
    for p in demo_shards.iterdir():
        (out / p.name).write_bytes(p.read_bytes())
    shard = out / "trainA-000001.tar"
    with tarfile.open(demo_shards / shard.name) as t:
        samples = [(m.name.split(".")[0], t.extractfile(m).read()) for m in t.getmembers()]
    samples[1] = (samples[1][0], b"\x89PNG\r\n\x1a\n broken")
    with wds.TarWriter(str(shard), encoder=False, mtime=0) as w:
        for key, data in samples:
            w.write({"__key__": key, "png": data})
    index = json.loads((out / "trainA.json").read_text())
    index["shards"][1]["bytes"] = shard.stat().st_size
    (out / "trainA.json").write_text(json.dumps(index))
    return out


def scalars(tb: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(tb))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)] if tag in acc.Tags()["scalars"] else []


def test_two_rank_torchrun_training_from_shards(make_recipe, demo_shards, tmp_path):
    """4 steps on 2 ranks from shards; then a restart from the step-2 checkpoint ends with the same weights."""
    shards = corrupt_copy(demo_shards, tmp_path / "shards")
    data = {"source": "shards", "shards_a": f"{shards}/trainA-{{000000..000002}}.tar",
            "shards_b": f"{shards}/trainB-{{000000..000002}}.tar", "workers": 1, "shuffle_buffer": 4}
    train = {"steps": 4, "log_every": 2, "ckpt_every": 2, "image_every": 0}
    recipe = make_recipe({"data": data, "train": train})
    proc = torchrun(2, str(recipe))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-5000:]
    assert "skipped domain A: corrupt sample 'a_00004'" in out
    ckpt = tmp_path / "run/checkpoints/step_00000004"
    assert sorted(p.name for p in ckpt.iterdir()) == ["MANIFEST.json", "rank_00000.pt", "rank_00001.pt", "train.pt"]
    # 4 steps x 2 ranks x batch 1 = one epoch of the 8 A images: the corrupt one is met exactly once
    skipped = scalars(tmp_path / "run/tb", "data/skipped")
    assert [s for s, _ in skipped] == [2, 4] and skipped[-1][1] == 1.0

    resumed = make_recipe({"data": data, "train": {**train, "run_dir": str(tmp_path / "resumed")}}, name="resumed.yaml")
    shutil.copytree(tmp_path / "run/checkpoints/step_00000002", tmp_path / "resumed/checkpoints/step_00000002")
    proc = torchrun(2, str(resumed))
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-5000:]
    assert "resumed from" in proc.stdout + proc.stderr
    assert_same_weights(load_weights(tmp_path / "run"), load_weights(tmp_path / "resumed"))
