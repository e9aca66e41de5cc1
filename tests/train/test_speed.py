"""The speed switches: what ``auto`` turns on where (CUDA; channels_last also for bf16 on every kind of CPU), one-line errors, and DDP's flags
computing what plain DDP computes (a one-rank gloo group in this process)."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.distributed as dist

from cgx.config import load_config
from cgx.distributed.ddp import DDPTrainable
from cgx.errors import ConfigError
from cgx.precision import resolve
from cgx.train.speed import plan_speed

CPU, CUDA = torch.device("cpu"), torch.device("cuda", 0)  # plan_speed only reads the device's type


@pytest.mark.parametrize("device, precision, channels_last, cudnn", [
    (CPU, "fp32", False, False), (CPU, "bf16", True, False),
    (CUDA, "fp32", False, True), (CUDA, "bf16", True, True), (CUDA, "fp16", True, True)])
def test_auto_turns_the_gpu_switches_on_only_on_cuda(device, precision, channels_last, cudnn):
    """channels_last on a CPU only for bf16 (measured faster there), never for fp32."""
    plan = plan_speed(load_config(None, []), device, precision)
    assert (plan.channels_last, plan.cudnn_benchmark, plan.compile) == (channels_last, cudnn, False)
    assert plan.memory_format == (torch.channels_last if channels_last else torch.preserve_format)


CPU_KINDS = {  # what torch reports of each kind of CPU met so far: (AMX tiles, AVX512-BF16)
    "amx": (True, True), "avx512-bf16 (AMD EPYC)": (False, True), "no bf16 units": (False, False)}


@pytest.mark.parametrize("kind, auto_precision", [
    ("amx", "bf16"), ("avx512-bf16 (AMD EPYC)", "bf16"), ("no bf16 units", "fp32")])
def test_auto_on_each_kind_of_cpu(kind, auto_precision, monkeypatch):
    """What auto picks on each kind (the table in the performance docs, measured with
    benchmarks/bench_cpu_kinds.py): precision bf16 where the CPU has bf16 units; channels_last with bf16
    on every kind (also bf16 asked for where it is emulated), the plain layout with fp32."""
    amx, avx512_bf16 = CPU_KINDS[kind]
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16)
    assert resolve("auto", CPU) == auto_precision
    cfg = load_config(None, [])
    assert plan_speed(cfg, CPU, resolve("auto", CPU)).channels_last is (auto_precision == "bf16")
    assert plan_speed(cfg, CPU, "bf16").channels_last is True
    assert plan_speed(cfg, CPU, "fp32").channels_last is False


def test_explicit_settings_win_over_auto():
    cfg = load_config(None, ["train.channels_last=true", "train.compile=true", "train.compile_mode=reduce-overhead",
                             "train.cudnn_benchmark=false"])
    plan = plan_speed(cfg, CPU, "fp32")
    assert plan.channels_last and plan.compile and plan.compile_mode == "reduce-overhead"
    assert plan.describe() == "compile (reduce-overhead), channels_last"
    assert not plan_speed(cfg, CUDA, "bf16").cudnn_benchmark
    assert not plan_speed(load_config(None, ["train.channels_last=false"]), CUDA, "bf16").channels_last


@pytest.mark.parametrize("override, message", [
    ("train.channels_last=sometimes", "train.channels_last must be one of 'auto', true, false, got 'sometimes'"),
    ("train.compile_mode=fast", "train.compile_mode must be one of 'default', 'reduce-overhead'"),
    ("distributed.gradient_as_bucket_view=1", "distributed.gradient_as_bucket_view must be one of"),
])
def test_bad_settings_are_one_line_errors(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(None, [override])


def test_wgangp_with_compile_is_a_one_line_error():
    cfg = load_config(None, ["loss.gan.name=wgangp", "train.compile=true"])
    with pytest.raises(ConfigError, match="train.compile=true cannot train loss.gan=wgangp"):
        plan_speed(cfg, CPU, "fp32")


@pytest.fixture
def one_rank_group(tmp_path):
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        yield
    finally:
        dist.destroy_process_group()


def test_ddp_flags_reach_ddp_and_train_as_plain_ddp(one_rank_group):
    """gradient_as_bucket_view: the same weights, bit for bit, over 3 Adam steps (the gradients are the
    same all-reduced numbers; only where they live changes)."""
    from cgx import plugins

    torch.manual_seed(0)
    net = plugins.create("discriminator", "patchgan", ndf=4, n_layers=2)
    x = torch.rand(2, 3, 32, 32)
    weights = []
    for flags in ({}, {"gradient_as_bucket_view": True}):
        module = copy.deepcopy(net)
        t = DDPTrainable(module, torch.optim.Adam(module.parameters(), lr=1e-3), True, CPU, None, **flags)
        assert t.wrapper.gradient_as_bucket_view == bool(flags)
        for _ in range(3):
            t.backward(t(x).square().mean())
            t.step()
        weights.append(copy.deepcopy(module.state_dict()))
        t.release()
    for k in weights[0]:
        assert torch.equal(weights[0][k], weights[1][k]), k


def test_ddp_strategy_resolves_auto_for_its_device():
    from cgx.distributed import WorldInfo, build_strategy

    cfg = load_config(None, ["train.precision=fp32"])
    s = build_strategy(cfg.distributed, cfg.train, WorldInfo())
    assert s.gradient_as_bucket_view is (s.device.type == "cuda")
    cfg = load_config(None, ["train.precision=fp32", "distributed.gradient_as_bucket_view=true"])
    s = build_strategy(cfg.distributed, cfg.train, WorldInfo())
    assert s.gradient_as_bucket_view is True


@pytest.mark.parametrize("device", [CPU, CUDA])
def test_deepspeed_keeps_the_plain_layout(device):
    """DeepSpeed views every parameter as flat bytes: auto leaves channels_last off, true is a one-line error."""
    assert not plan_speed(load_config(None, ["distributed.strategy=deepspeed"]), device, "bf16").channels_last
    with pytest.raises(ConfigError, match=r"train.channels_last=true cannot train with distributed.strategy=deepspeed"):
        plan_speed(load_config(None, ["distributed.strategy=deepspeed", "train.channels_last=true"]), device, "bf16")
