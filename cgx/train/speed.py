"""The speed switches of a training run, resolved once for its device: ``train.compile`` (and its
mode), ``train.channels_last``, ``train.cudnn_benchmark``. Each computes what the plain path
computes (tests/train/test_compile.py, tests/train/test_fast_paths.py); ``auto`` turns a switch on
where it pays: on CUDA where it is expected to (NHWC for tensor-core convolutions; not yet measured
here: ``benchmarks/gpu_check.sh``), and channels_last for bf16 on every kind of CPU, where it was measured
(``cpu_channels_last``); elsewhere the plain path (each key's docstring in ``cgx.config``).

torch.compile here compiles each network of a group in place (``nn.Module.compile``): the module keeps
its own parameters and ``state_dict`` keys (no ``_orig_mod.`` prefix), so a compiled run's checkpoint
resumes in an eager run and the other way round. Shapes are static (``dynamic=False``): a network
called at two batch sizes in a step (G on [a; b] and on fake_b) gets one graph for each, compiled in
the first step, and no later step compiles again (tests/train/test_compile.py holds it to that)."""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Iterable

import torch
from torch import nn

from ..errors import ConfigError


@dataclass(frozen=True)
class SpeedPlan:
    compile: bool
    compile_mode: str
    channels_last: bool
    cudnn_benchmark: bool

    @property
    def cuda_graphs(self) -> bool:
        """Compiled networks replayed as CUDA graphs (``reduce-overhead``, ``max-autotune``; CUDA only)."""
        return self.compile and self.compile_mode in ("reduce-overhead", "max-autotune")

    def begin_step(self) -> None:
        """Before each training step: with CUDA graphs, tell torch a new iteration starts (the previous
        step's graph outputs may be overwritten from here on). Nothing otherwise."""
        if self.cuda_graphs:
            torch.compiler.cudagraph_mark_step_begin()

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.preserve_format

    def describe(self) -> str:
        """For the log: what is on, e.g. ``compile (reduce-overhead), channels_last, cudnn.benchmark``."""
        on = ([f"compile ({self.compile_mode})"] if self.compile else []) + \
             (["channels_last"] if self.channels_last else []) + (["cudnn.benchmark"] if self.cudnn_benchmark else [])
        return ", ".join(on) or "none"


def cpu_channels_last(precision: str) -> bool:
    """``train.channels_last=auto`` on a CPU: on for bf16, off for fp32, on every kind of CPU met so far
    (the table with its figures is in the performance docs; ``benchmarks/bench_cpu_kinds.py`` times the
    variants in turn, and holds oneDNN to another kind with ``ONEDNN_MAX_CPU_ISA``):

    - AMX: bf16+cl 1.23x bf16 at 128 px, 1.5x at 256 (bench_step, quiet); oneDNN's AMX kernels want NHWC.
    - AVX512-BF16 without AMX (AMD EPYC): bf16+cl 1.08x bf16 (issue 31, a real EPYC); the stand-in
      on the AMX Xeon agrees in direction (1.03x, a busy machine).
    - no bf16 units: bf16 is emulated (``precision=auto`` picks fp32 there); when asked for anyway,
      NHWC is the less slow layout (1.75x on a small generator with oneDNN held to AVX2).

    fp32 keeps the plain layout: 0.94x with channels_last on an EPYC without bf16 units, 1.04-1.08x on
    AMX (where auto picks bf16 anyway), within the noise of the stand-ins."""
    return precision == "bf16"


def plan_speed(cfg, device: torch.device, precision: str) -> SpeedPlan:
    """The switches for ``cfg`` (a whole recipe) on ``device`` with the run's resolved ``precision``."""
    t, where = cfg.train, cfg.recipe or "<recipe>"
    cuda = device.type == "cuda"
    if t.compile and cfg.loss.gan.name == "wgangp":
        raise ConfigError(f"{where}: train.compile=true cannot train loss.gan=wgangp (its gradient penalty "
                          f"differentiates the critic twice, which a compiled network does not support); "
                          f"set train.compile=false")
    deepspeed = cfg.distributed.strategy == "deepspeed"
    if t.channels_last is True and deepspeed:
        raise ConfigError(f"{where}: train.channels_last=true cannot train with distributed.strategy=deepspeed "
                          f"(DeepSpeed broadcasts and partitions parameters as flat contiguous memory); "
                          f"set train.channels_last=auto or false")
    if t.channels_last == "auto":  # DeepSpeed: the plain layout (above)
        channels_last = not deepspeed and ((cuda and precision in ("bf16", "fp16"))
                                           or (device.type == "cpu" and cpu_channels_last(precision)))
    else:
        channels_last = t.channels_last
    return SpeedPlan(compile=t.compile, compile_mode=t.compile_mode, channels_last=bool(channels_last),
                     cudnn_benchmark=cuda and t.cudnn_benchmark)


def apply_speed(plan: SpeedPlan, groups: Iterable[nn.Module], device: torch.device) -> None:
    """Place every group on ``device`` in the plan's memory format, compile each network of each group
    (the groups' own forwards are Python glue around them) and set cuDNN's benchmark mode."""
    if plan.cudnn_benchmark:
        torch.backends.cudnn.benchmark = True  # the step's shapes are fixed: each is timed once
    for group in groups:
        group.to(device, memory_format=plan.memory_format)
        if plan.compile:
            for net in group.children():
                net.compile(mode=plan.compile_mode, dynamic=False)


def compiled_graphs() -> int:
    """Graphs torch.compile has compiled in this process so far (``torch._dynamo`` counters)."""
    from torch._dynamo.utils import counters

    return int(counters["stats"]["unique_graphs"])


class WarmUp:
    """How long the compiled networks took to compile: the steps from the first until the first that
    compiled nothing new, timed together (``torch._dynamo`` counters tell which steps compiled)."""

    def __init__(self, active: bool) -> None:
        self.active = active
        self.seconds = 0.0
        self.steps = 0
        self.graphs = compiled_graphs() if active else 0

    def step_started(self) -> None:
        self.t0 = time.perf_counter()

    def step_done(self) -> str | None:
        """After a step: the line to log once the warm-up is over (None before and after)."""
        if not self.active:
            return None
        graphs = compiled_graphs()
        if graphs > self.graphs:
            self.seconds += time.perf_counter() - self.t0
            self.steps += 1
            self.graphs = graphs
            return None
        self.active = False
        return (f"cgx: compiled in {self.seconds:.1f} s ({self.graphs} graphs, the first "
                f"{self.steps} step{'s' if self.steps != 1 else ''})") if self.steps else None
