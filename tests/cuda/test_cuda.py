"""What only a GPU can show (pytest -m cuda; benchmarks/gpu_check.sh runs these). Skipped without CUDA."""
from __future__ import annotations

import pytest
import torch
from conftest import float64_error, load_weights

from cgx.config import load_config
from cgx.plugins import Registry
from cgx.train.trainer import Trainer

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]


def train(recipe, *overrides) -> Trainer:
    trainer = Trainer(load_config(recipe, list(overrides)), registry=Registry())
    try:
        trainer.fit()
        return trainer
    finally:
        trainer.close()


@pytest.mark.parametrize("precision", ["fp32", "bf16", "fp16", "auto"])
def test_trains_on_the_gpu_in_every_precision(make_recipe, tmp_path, precision):
    trainer = train(make_recipe(), f"train.precision={precision}", "train.steps=3")
    assert trainer.device.type == "cuda" and trainer.step == 3
    assert all(torch.isfinite(v).all() for v in load_weights(tmp_path / "run").values())


def test_channels_last_gradients_on_the_gpu():
    from cgx import plugins

    torch.manual_seed(0)
    for kind, name, kw in (("generator", "resnet", {"ngf": 8, "n_blocks": 2}), ("discriminator", "patchgan", {"ndf": 8})):
        net = plugins.create(kind, name, **kw).cuda()
        x = (torch.rand(2, 3, 64, 64) * 2 - 1).cuda()
        torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
        contiguous, channels_last = float64_error(net, x, False), float64_error(net, x, True)
        assert channels_last < max(4 * contiguous, 1e-5), (name, contiguous, channels_last)


def test_translate_on_the_gpu(make_recipe, tmp_path, demo_data):
    from cgx.translate import translate_folder

    train(make_recipe(), "train.steps=2")
    written = translate_folder(tmp_path / "run", demo_data / "testA", tmp_path / "out", device="cuda", progress=False)
    assert written and all(p.is_file() for p in written)


def wired_step(*overrides):
    from cgx import plugins
    from cgx.distributed import WorldInfo, build_strategy
    from cgx.train.wiring import wire_step

    cfg = load_config(None, ["model.generator.ngf=8", "model.generator.n_blocks=2", "model.discriminator.ndf=8",
                             "buffer.size=2", *overrides])
    strategy = build_strategy(cfg.distributed, cfg.train, WorldInfo())
    return wire_step(cfg, plugins.default_registry(), strategy)


def test_the_gpu_switches_are_on_by_default_in_bf16():
    wired = wired_step("train.precision=bf16")
    assert wired.speed.channels_last and wired.speed.cudnn_benchmark and torch.backends.cudnn.benchmark
    conv = next(m for m in wired.gens.module.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size[0] > 1)
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)


def test_the_step_never_waits_for_the_device():
    """No host sync inside a training step (torchtitan's rule): torch raises on any synchronising call."""
    wired = wired_step("train.precision=bf16")
    a, b = (torch.rand(1, 3, 64, 64, device="cuda") * 2 - 1 for _ in range(2))
    a, b = a.contiguous(memory_format=torch.channels_last), b.contiguous(memory_format=torch.channels_last)
    wired.step(a, b)  # first-use allocations and cuDNN benchmarking may sync
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for _ in range(4):  # past the pool's filling (size 2): swaps draw on the host generator
            wired.step(a, b)
    finally:
        torch.cuda.set_sync_debug_mode("default")


@pytest.mark.parametrize("mode", ["default", "reduce-overhead"])
def test_compiled_and_cuda_graph_training_matches_eager(make_recipe, tmp_path, mode):
    torch._dynamo.reset()
    runs = {}
    for name, compiled in (("eager", False), ("compiled", True)):
        recipe = make_recipe({"train": {"run_dir": str(tmp_path / name), "steps": 4, "precision": "fp32",
                                        "compile": compiled, "compile_mode": mode}}, name=f"{name}.yaml")
        train(recipe)
        runs[name] = load_weights(tmp_path / name)
    a, b = runs["eager"], runs["compiled"]
    assert max((a[k] - b[k]).abs().max().item() for k in a if k.endswith("weight")) < 1e-3
