"""DeepSpeed's partitioned optimizer state (ZeRO 1/2, and the bf16 optimizer) on another world size.

DeepSpeed refuses to load a ZeRO checkpoint on another data-parallel world size ("Automatic adjustment
of ZeRO's optimizer state partitioning with a new world size is not currently supported"); its
universal checkpoints need an offline conversion of the whole checkpoint first (``ds_to_universal``).
cgx keeps a plain copy instead: with every DeepSpeed checkpoint, rank 0 writes ``cgx_full_state.pt``
beside DeepSpeed's files: per parameter (by name) the fp32 master weights and each optimizer state
tensor (Adam's ``exp_avg``, ``exp_avg_sq``, SGD's ``momentum_buffer``), whole, without padding, plus
the optimizer's scalar state (``step``). On another world size the engine loads the module weights
from DeepSpeed's files and this copy fills the new partitions (DeepSpeed's own
``safe_set_full_fp32_param`` / ``safe_set_full_optimizer_state``).

Gathering the copy costs one all-reduce per parameter and state tensor at each checkpoint (the size of
the fp32 model times the number of state tensors plus one, once per checkpoint)."""
from __future__ import annotations

from pathlib import Path

import torch

FILE = "cgx_full_state.pt"
"""The plain copy's file, in the engine's DeepSpeed checkpoint folder (``generators/``, ...)."""


def partitioned(engine) -> bool:
    """Does DeepSpeed keep this engine's fp32 master weights and optimizer state partitioned over ranks?"""
    return any(getattr(p, "_hp_mapping", None) is not None for p in engine.module.parameters())


def saved_world_size(folder: Path) -> int:
    """How many ranks wrote the partitioned optimizer state in a DeepSpeed checkpoint folder (0: none)."""
    return len(list(Path(folder).glob("*zero_pp_rank_*_optim_states.pt")))


def _flat_states(engine) -> list[tuple[torch.Tensor, dict]]:
    """(flat fp32 partition, its optimizer state) of each parameter group, on this rank."""
    base = engine.optimizer.optimizer
    return [(group["params"][0], base.state.get(group["params"][0], {})) for group in base.param_groups]


def _state_keys(engine) -> tuple[list[str], dict]:
    """The optimizer state keys that are partitioned like the weights, and the scalar state of group 0."""
    flat, state = _flat_states(engine)[0]
    keys = [k for k, v in state.items() if torch.is_tensor(v) and v.shape == flat.shape]
    scalars = {k: v for k, v in state.items() if k not in keys}
    return keys, scalars


def _link_optimizer_state(engine) -> None:
    """Point each parameter's view of its optimizer state (DeepSpeed links it once, after the first step)
    at the optimizer state tensors there are now."""
    opt = engine.optimizer
    opt._hp_optimizer_states_linked = False
    opt._lazy_init_hp_params_optimizer_state()


def gather(engine) -> dict:
    """Collective: the whole fp32 weights and optimizer state of every parameter (by name), on every rank."""
    from deepspeed.utils import safe_get_full_fp32_param, safe_get_full_optimizer_state

    _link_optimizer_state(engine)
    keys, scalars = _state_keys(engine)
    params = {}
    for name, p in engine.module.named_parameters():
        entry = {"fp32": safe_get_full_fp32_param(p).detach().cpu().clone()}
        for key in keys:
            entry[key] = safe_get_full_optimizer_state(p, key).detach().cpu().clone()
        params[name] = entry
    groups = [{k: v for k, v in g.items() if k != "params"} for g in engine.optimizer.optimizer.param_groups]
    return {"params": params, "keys": keys, "scalars": scalars, "groups": groups}


def scatter(engine, full: dict) -> None:
    """This rank's partitions of the weights and optimizer state from ``gather``'s ``full`` (any world size
    wrote it); the engine's module weights must already hold the saved weights."""
    from deepspeed.utils import safe_set_full_fp32_param, safe_set_full_optimizer_state

    names = [n for n, _ in engine.module.named_parameters()]
    if sorted(names) != sorted(full["params"]):
        missing = sorted(set(names) - set(full["params"]))[:3]
        raise ValueError(f"{FILE} does not hold the recipe's parameters (missing: {', '.join(missing) or '-'})")
    for flat, state in _flat_states(engine):
        for key in full["keys"]:
            if key not in state:
                state[key] = torch.zeros_like(flat)
        for key, value in full["scalars"].items():
            state[key] = value.clone() if torch.is_tensor(value) else value
        engine.optimizer.optimizer.state[flat] = state
    for group, saved in zip(engine.optimizer.optimizer.param_groups, full["groups"]):
        group.update({k: v for k, v in saved.items() if k in group or k == "step"})
    _link_optimizer_state(engine)
    for name, p in engine.module.named_parameters():
        entry = full["params"][name]
        safe_set_full_fp32_param(p, entry["fp32"].to(p.device))
        for key in full["keys"]:
            safe_set_full_optimizer_state(p, entry[key].to(p.device), key)
