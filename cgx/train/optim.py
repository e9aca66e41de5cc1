"""The optimizers of a run: one per network group, each from ``optim`` with ``optim.<group>`` over it
(``OptimConfig.for_group``)."""
from __future__ import annotations

import torch

from ..config import OptimConfig

IMPLEMENTATIONS = {"fused": {"fused": True, "foreach": False}, "foreach": {"fused": False, "foreach": True},
                   "for-loop": {"fused": False, "foreach": False}}
"""``optim.implementation`` -> the flags torch's Adam and SGD take."""


def fused_supported(params: list[torch.Tensor]) -> bool:
    """torch has fused Adam/SGD kernels for every one of ``params`` (floating point, on a device with them)."""
    from torch.utils._foreach_utils import _get_fused_kernels_supported_devices

    devices = set(_get_fused_kernels_supported_devices())
    return bool(params) and all(p.is_floating_point() and p.device.type in devices for p in params)


def implementation_flags(params: list[torch.Tensor], choice: str) -> dict:
    """The ``fused``/``foreach`` arguments for ``optim.implementation``; ``auto`` is fused where
    supported, else torch's default (foreach on CUDA, the for-loop elsewhere)."""
    if choice == "auto":
        return IMPLEMENTATIONS["fused"] if fused_supported(params) else {}
    return IMPLEMENTATIONS[choice]


def keep_implementation(optimizer: torch.optim.Optimizer) -> None:
    """Loading a checkpoint keeps the implementation this run chose: torch's ``load_state_dict``
    otherwise takes the saved param groups' ``fused``/``foreach`` flags (a run resumed from an older
    or another machine's checkpoint would step with that one's), and the step counters follow
    (fused keeps them on the parameters' device)."""
    chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]

    def pre_hook(opt, state_dict):
        groups = [{**saved, **flags} for saved, flags in zip(state_dict["param_groups"], chosen)]
        return {**state_dict, "param_groups": groups}

    optimizer.register_load_state_dict_pre_hook(pre_hook)


def build_optimizer(params, cfg: OptimConfig, offload: bool = False) -> torch.optim.Optimizer:
    """The recipe's ``optim`` section as an optimizer. ``offload`` (``distributed.offload_optimizer``):
    DeepSpeed's CPU Adam, which keeps the optimizer state in host memory."""
    if offload:
        from deepspeed.ops.adam import DeepSpeedCPUAdam

        return DeepSpeedCPUAdam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                                adamw_mode=False)  # L2 added to the gradient, as torch's Adam
    params = list(params)
    flags = implementation_flags(params, cfg.implementation)
    if cfg.name == "adam":
        optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=tuple(cfg.betas), weight_decay=cfg.weight_decay,
                                     **flags)
    else:
        optimizer = torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay,
                                    **flags)
    keep_implementation(optimizer)
    return optimizer
