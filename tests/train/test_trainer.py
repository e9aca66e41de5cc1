"""Single-process training: outputs of a run, resume parity, NaN stop, mismatched checkpoints."""
from __future__ import annotations

import shutil
import textwrap

import pytest
import torch
from conftest import assert_same_run_state, assert_same_weights, load_weights

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.run import main as run_main
from cgx.train.checkpoint import CheckpointError, list_checkpoints
from cgx.train.manifest import write_manifest
from cgx.train.trainer import NonFiniteLossError, Trainer


def train(recipe, *overrides, until=None, registry=None):
    trainer = Trainer(load_config(recipe, list(overrides)), registry=registry or Registry())
    try:
        trainer.fit(until=until)
        return trainer.step
    finally:
        trainer.close()


def test_run_leaves_config_checkpoints_and_tensorboard(make_recipe, tmp_path):
    recipe = make_recipe()
    assert run_main([str(recipe)]) == 0
    run = tmp_path / "run"
    assert load_config(run / "config.yaml").train.steps == 6
    assert [p.name for p in list_checkpoints(run / "checkpoints")] == ["step_00000003", "step_00000006"]
    assert list((run / "tb").glob("events.out.tfevents.*"))
    state = torch.load(run / "checkpoints/step_00000006/train.pt", weights_only=True)
    assert state["step"] == 6 and state["config"]["model"]["generator"]["ngf"] == 4
    rank = torch.load(run / "checkpoints/step_00000006/rank_00000.pt", weights_only=True)
    assert rank["method"]["buffers"]["A"]["images"].shape == (4, 3, 32, 32)  # the pool filled to its size


def test_tensorboard_has_every_loss_term_and_perf(make_recipe, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    assert run_main([str(make_recipe())]) == 0
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    for term in ("G/gan_AtoB", "G/gan_BtoA", "G/cycle_A", "G/cycle_B", "G/identity_A", "G/identity_B", "D/A", "D/B"):
        assert f"loss/{term}" in tags
    assert {"lr/generators", "perf/images_per_s", "perf/step_time_s", "perf/data_wait_s"} <= tags
    assert len(acc.Tags()["images"]) == 2


def test_keep_last_k_checkpoints(make_recipe, tmp_path):
    train(make_recipe(), "train.ckpt_every=1", "train.keep=2")
    assert [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")] == ["step_00000005", "step_00000006"]


@pytest.mark.parametrize("workers", [0, 1])
def test_resume_parity_single_process(make_recipe, tmp_path, workers):
    """k steps, stop, resume, k more == 2k straight: weights, image pools and lr."""
    straight = make_recipe({"train": {"run_dir": str(tmp_path / "straight")}, "data": {"workers": workers}})
    resumed = make_recipe({"train": {"run_dir": str(tmp_path / "resumed")}, "data": {"workers": workers}},
                          name="resumed.yaml")
    train(straight)
    assert train(resumed, until=3) == 3
    assert train(resumed) == 6  # auto-resumes from step 3
    assert_same_run_state(tmp_path / "straight", tmp_path / "resumed", step=6)
    s = torch.load(tmp_path / "resumed/checkpoints/step_00000006/train.pt", weights_only=True)
    assert s["groups"]["generators"]["optimizer"]["param_groups"][0]["lr"] == 0.0  # decayed to 0 at the end


def test_lr_decays_linearly_to_zero(make_recipe, tmp_path):
    train(make_recipe(), "optim.decay_steps=4")
    lrs = []
    for p in list_checkpoints(tmp_path / "run/checkpoints"):
        s = torch.load(p / "train.pt", weights_only=True)
        lrs.append(s["groups"]["generators"]["optimizer"]["param_groups"][0]["lr"])
    assert lrs == pytest.approx([2e-4 * 3 / 4, 0.0])  # after step 3: 1 of 4 decay steps taken; after 6: 0


NAN_PLUGIN = textwrap.dedent('''
    import torch
    from cgx.plugins import hookimpl

    class NanAfter:
        """LSGAN that turns into NaN from the 5th generator step on."""
        def __init__(self, after):
            self.after, self.calls = after, 0
        def generator_loss(self, fake):
            self.calls += 1
            loss = ((fake.float() - 1) ** 2).mean()
            return loss * float("nan") if self.calls > 2 * self.after else loss
        def discriminator_loss(self, real, fake, batch):
            return 0.5 * (((real.float() - 1) ** 2).mean() + (fake.float() ** 2).mean())

    def build(after: int = 4):
        return NanAfter(after)

    @hookimpl
    def cgx_register_adversarial_losses(register):
        register("nan_after", build)
''')


def test_nan_stops_with_step_and_keeps_good_checkpoints(make_recipe, tmp_path):
    (tmp_path / "nan_plugin.py").write_text(NAN_PLUGIN)
    recipe = make_recipe({"plugins": ["nan_plugin.py"], "loss": {"gan": {"name": "nan_after", "after": 4}},
                          "train": {"ckpt_every": 2}})
    with pytest.raises(NonFiniteLossError, match="step 5"):
        train(recipe)
    names = [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")]
    assert names == ["step_00000002", "step_00000004"]
    good = torch.load(tmp_path / "run/checkpoints/step_00000004/train.pt", weights_only=True)
    assert all(torch.isfinite(v).all() for v in good["groups"]["generators"]["module"].values())


def test_cli_exit_code_for_nan(make_recipe, tmp_path, capsys):
    (tmp_path / "nan_plugin.py").write_text(NAN_PLUGIN)
    recipe = make_recipe({"plugins": ["nan_plugin.py"], "loss": {"gan": {"name": "nan_after", "after": 1}}})
    assert run_main([str(recipe)]) == 3
    assert "non-finite loss at step 2" in capsys.readouterr().err


def test_checkpoint_that_does_not_match_the_recipe(make_recipe):
    recipe = make_recipe()
    train(recipe, until=3)
    with pytest.raises(CheckpointError, match="does not match the recipe's network group 'generators'"):
        Trainer(load_config(recipe, ["model.generator.ngf=8"]), registry=Registry())


def test_resume_at_another_crop_size_trains_on_and_says_what_changed(make_recipe, tmp_path, capsys):
    """The image pools hold images of the old size: resized, so the next checkpoint is written (it was
    refused with a tensor-size error); the log names every recipe key that changed."""
    recipe = make_recipe()
    train(recipe, until=3)
    assert run_main([str(recipe), "data.crop_size=24", "data.load_size=28"]) == 0
    out = capsys.readouterr().out
    assert "the recipe differs from the one step_00000003 was trained with: data.crop_size 32 -> 24, " \
           "data.load_size 36 -> 28" in out
    rank = torch.load(tmp_path / "run/checkpoints/step_00000006/rank_00000.pt", weights_only=True)
    assert rank["method"]["buffers"]["A"]["images"].shape == (4, 3, 24, 24)
    assert run_main([str(recipe), "data.crop_size=24", "data.load_size=28", "train.steps=7"]) == 0
    assert "data.crop_size" not in capsys.readouterr().out  # step 6 was trained at 24


def test_interrupted_checkpoint_write_keeps_the_last_good_one(make_recipe, tmp_path, monkeypatch):
    recipe = make_recipe()
    train(recipe, until=3)
    import cgx.train.checkpoint as ckpt

    real_save = ckpt._save_file
    calls = []

    def crash_on_shared(obj, path):
        calls.append(path.name)
        if path.name == ckpt.SHARED_FILE:
            raise KeyboardInterrupt("killed mid-write")
        real_save(obj, path)

    monkeypatch.setattr(ckpt, "_save_file", crash_on_shared)
    with pytest.raises(KeyboardInterrupt):
        train(recipe)
    monkeypatch.setattr(ckpt, "_save_file", real_save)
    assert [p.name for p in list_checkpoints(tmp_path / "run/checkpoints")] == ["step_00000003"]
    assert train(recipe) == 6  # and the run resumes from it


def test_precision_fp16_on_cpu_is_a_clear_error(make_recipe, capsys):
    assert run_main([str(make_recipe()), "train.precision=fp16"]) == 2
    assert "train.precision=fp16 needs a CUDA device" in capsys.readouterr().err


def test_bf16_trains(make_recipe, tmp_path):
    assert train(make_recipe(), "train.precision=bf16", "train.steps=2") == 2
    assert all(torch.isfinite(v).all() for v in load_weights(tmp_path / "run").values())


def test_channels_last_trains_on_cpu(make_recipe, tmp_path):
    """channels_last was refused on CPU over gradients that differed from the default layout's; against
    float64 both are equally exact (test_fast_paths.py): it trains, and stays close to the default."""
    assert train(make_recipe({"train": {"run_dir": str(tmp_path / "nchw")}}, name="a.yaml"), "train.steps=2") == 2
    assert train(make_recipe({"train": {"run_dir": str(tmp_path / "nhwc")}}, name="b.yaml"),
                 "train.steps=2", "train.channels_last=true") == 2
    a, b = load_weights(tmp_path / "nchw"), load_weights(tmp_path / "nhwc")
    assert all(torch.isfinite(v).all() for v in b.values())
    weights = [k for k in a if k.endswith("weight")]
    assert max((a[k] - b[k]).abs().max().item() for k in weights) < 1e-3


def test_stop_file_checkpoints_and_a_rerun_finishes_identically(make_recipe, tmp_path):
    straight = make_recipe({"train": {"run_dir": str(tmp_path / "straight")}}, name="straight.yaml")
    stopped = make_recipe({"train": {"run_dir": str(tmp_path / "stopped")}}, name="stopped.yaml")
    train(straight)
    (tmp_path / "stopped").mkdir()
    (tmp_path / "stopped/STOP").touch()
    assert train(stopped) == 1  # stopped at the first step boundary, with a checkpoint there
    assert not (tmp_path / "stopped/STOP").exists()
    assert [p.name for p in list_checkpoints(tmp_path / "stopped/checkpoints")] == ["step_00000001"]
    assert train(stopped) == 6
    assert_same_weights(load_weights(tmp_path / "straight"), load_weights(tmp_path / "stopped"))


@pytest.mark.multiprocess
def test_sigusr1_checkpoints_at_the_next_step_and_exits_75(make_recipe, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    recipe = make_recipe({"train": {"steps": 100000, "ckpt_every": 100000}})
    proc = subprocess.Popen([sys.executable, "-m", "cgx.run", str(recipe)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    while not (tmp_path / "run/tb").exists() and time.time() < deadline:
        time.sleep(0.2)
    time.sleep(2)
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 75, out  # stopped, resume me
    assert (tmp_path / "run/STOPPED").is_file()
    assert "on request (signal SIGUSR1)" in out
    ckpts = list_checkpoints(tmp_path / "run/checkpoints")
    assert len(ckpts) == 1 and 0 < int(ckpts[0].name.split("_")[1]) < 100000


def test_a_diverging_run_never_writes_non_finite_weights(make_recipe, tmp_path):
    """SGD at lr 300 blows the weights up: every checkpoint written is finite, the run stops."""
    recipe = make_recipe({"optim": {"name": "sgd", "lr": 300.0}, "train": {"steps": 12, "ckpt_every": 2, "log_every": 5}})
    with pytest.raises(NonFiniteLossError, match="non-finite"):
        train(recipe)
    for path in list_checkpoints(tmp_path / "run/checkpoints"):
        state = torch.load(path / "train.pt", weights_only=True)
        for part in ("generators", "discriminators"):
            assert all(torch.isfinite(v).all() for v in state["groups"][part]["module"].values()), (path, part)


def test_checkpoint_format_is_checked_on_load(make_recipe, tmp_path):
    recipe = make_recipe()
    train(recipe, until=3)
    path = tmp_path / "run/checkpoints/step_00000003/train.pt"
    state = torch.load(path, weights_only=True)
    state["format"] = 99
    torch.save(state, path)
    write_manifest(path.parent)  # consistent: a checkpoint of another format, not a damaged one
    with pytest.raises(CheckpointError, match=r"checkpoint format 99, this cgx reads formats 1, 2"):
        Trainer(load_config(recipe), registry=Registry())
