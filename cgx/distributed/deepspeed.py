"""DeepSpeed (ZeRO 0/1/2, bf16/fp16, optional optimizer offload) for a GAN's two network pairs.

One engine for the generator pair, one for the discriminator pair. An engine per network fails
(calling one engine inside another's step fires the wrong engine's hooks on ``backward``), so the
trainer's generator phase calls the discriminator pair's bare network (``module``) with its
parameters frozen, and the discriminator phase calls the D engine once on real and pooled fakes
together, exactly as under DDP.

Checkpoints: each engine writes DeepSpeed's own checkpoint (``generators/``, ``discriminators/``
in the checkpoint folder; ZeRO optimizer state sharded per rank) and rank 0 also stores the plain
generator weights in ``train.pt`` so that ``cgx translate`` reads a DeepSpeed run like any other.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
from torch import nn

from ..errors import SetupError
from ..precision import autocast
from .base import Strategy


class _CastInputs:
    """bf16/fp16 engines hold half-precision weights and take half-precision inputs."""

    def __init__(self, engine, dtype) -> None:
        self.engine, self.dtype = engine, dtype

    def __call__(self, *args, **kwargs):
        if self.dtype is not None:
            args = [a.to(self.dtype) if torch.is_tensor(a) and a.is_floating_point() else a for a in args]
        return self.engine(*args, **kwargs)


class DeepSpeedTrainable:
    """``self(...)`` runs the DeepSpeed engine; ``self.module`` is the bare network (``engine.module``)."""

    def __init__(self, module: nn.Module, optimizer: torch.optim.Optimizer, config: dict, name: str, dtype) -> None:
        import deepspeed

        engine, _, _, _ = deepspeed.initialize(model=module, optimizer=optimizer, config=config,
                                               dist_init_required=False)
        self.engine = engine
        self.module = engine.module
        self.optimizer = optimizer  # the base optimizer: the lr schedule sets its param_groups' lr
        self.name = name
        self.wrapper: _CastInputs | None = _CastInputs(engine, dtype)

    def __call__(self, *args, **kwargs):
        return self.wrapper(*args, **kwargs)

    def forward_bare(self, *args, **kwargs):
        """A forward pass of the bare network, outside the engine (a step on which the group does not update),
        with the engine's input precision."""
        return _CastInputs(self.module, self.wrapper.dtype)(*args, **kwargs)

    def backward(self, loss: torch.Tensor) -> None:
        self.engine.backward(loss)

    def step(self) -> None:
        self.engine.step()  # also zeroes the gradients

    def state_dict(self) -> dict:
        """Plain full weights in fp32 (ZeRO <= 2 keeps them whole on every rank)."""
        return {"module": {k: v.float() if v.is_floating_point() else v for k, v in self.module.state_dict().items()}}

    def save_sharded(self, folder: Path) -> None:
        self.engine.save_checkpoint(str(folder), tag=self.name, save_latest=False)

    def load_state_dict(self, state: dict) -> None:
        """The weights and optimizer state come from DeepSpeed's own checkpoint (``load_sharded``)."""

    def load_sharded(self, folder: Path) -> None:
        if not (Path(folder) / self.name).is_dir():
            raise ValueError(f"no DeepSpeed checkpoint '{self.name}' in {folder} "
                             f"(was it written by distributed.strategy=ddp?)")
        path, _ = self.engine.load_checkpoint(str(folder), tag=self.name, load_lr_scheduler_states=False)
        if path is None:
            raise ValueError(f"DeepSpeed could not load '{self.name}' from {folder}")

    def release(self) -> None:
        self.wrapper = None
        self.engine.destroy()
        self.engine = None


class DeepSpeedStrategy(Strategy):
    name = "deepspeed"

    def __init__(self, world, *, backend="auto", precision="fp32", timeout_min=30, zero_stage: int = 0,
                 offload_optimizer: bool = False, batch_size: int = 1) -> None:
        if not torch.cuda.is_available():
            os.environ.setdefault("DS_ACCELERATOR", "cpu")
        # DeepSpeed builds its ops (on CPU: the shared-memory comm op) into torch's extension cache.
        # One cache for every environment makes two venvs rebuild over each other's build (and wait
        # on each other's lock): keep the build with the environment it was built for.
        os.environ.setdefault("TORCH_EXTENSIONS_DIR", str(Path(sys.prefix) / "torch_extensions"))
        if zero_stage not in (0, 1, 2):
            raise SetupError(f"distributed.zero_stage={zero_stage} is not supported; allowed: 0, 1, 2")
        if world.world_size == 1:  # DeepSpeed needs a process group even for one process
            for k, v in (("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", str(_free_port())), ("RANK", "0"),
                         ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1")):
                os.environ.setdefault(k, v)
        super().__init__(world, backend=backend, precision=precision, timeout_min=timeout_min)
        precision = self.precision  # "auto" resolved
        if world.world_size == 1:
            import torch.distributed as dist

            if not dist.is_initialized():
                dist.init_process_group(self.backend, rank=0, world_size=1)
        import deepspeed

        deepspeed.init_distributed(dist_backend=self.backend, dist_init_required=False)
        self.config = {
            "train_micro_batch_size_per_gpu": batch_size,
            "gradient_accumulation_steps": 1,
            "zero_optimization": {"stage": zero_stage},
            "bf16": {"enabled": precision == "bf16"},
            "fp16": {"enabled": precision == "fp16", "initial_scale_power": 16},
            "zero_allow_untested_optimizer": True,
            "gradient_clipping": 0.0,  # DeepSpeed 0.19 clips at 1.0 unless told; the paper does not clip
            "steps_per_print": 10**9,
            "wall_clock_breakdown": False,
        }
        if offload_optimizer:
            self.config["zero_optimization"]["offload_optimizer"] = {"device": "cpu"}
        self.offload = offload_optimizer

    def autocast(self):
        """The engines run in their own precision (half-precision weights), not under autocast."""
        return autocast("fp32", self.device)

    def wrap(self, module: nn.Module, optimizer: torch.optim.Optimizer, name: str = "net") -> DeepSpeedTrainable:
        t = DeepSpeedTrainable(module, optimizer, self.config, name, self.dtype)
        self._trainables.append(t)
        return t


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
