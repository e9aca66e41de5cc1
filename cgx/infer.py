"""Using trained generators: load them from a checkpoint, translate images of any size."""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, config_from_dict
from .errors import SetupError
from .interop.authors import build as build_authors_network
from .interop.sources import is_authors_folder, read_paths
from .plugins import Registry, default_registry
from .precision import resolve as resolve_precision
from .train import components
from .train.checkpoint import SHARED_FILE, CheckpointError, load_file, resolve


@dataclass
class Generators:
    G: nn.Module | None  # A -> B
    F: nn.Module | None  # B -> A (one of the two is None for a single authors' generator file)
    config: Config
    checkpoint: Path
    step: int

    def net(self, direction: str) -> nn.Module:
        if direction not in ("AtoB", "BtoA"):
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        net = self.G if direction == "AtoB" else self.F
        if net is None:
            has = "AtoB" if self.F is None else "BtoA"
            raise CheckpointError(f"{self.checkpoint} holds no {direction} generator, only {has}; use --direction {has}")
        return net


def load_generators(path: str | Path, device: str | torch.device = "cpu", registry: Registry | None = None) -> Generators:
    """Generators from a checkpoint folder, a run folder (newest checkpoint) or a ``train.pt``; or
    from the authors' files: a checkpoint folder (``latest_net_G_A.pth``: A -> B, ``latest_net_G_B.pth``:
    B -> A) or one generator file (A -> B, or B -> A if it is named ``*net_G_B.pth``)."""
    p = Path(path)
    if (p.is_file() and p.name != SHARED_FILE) or is_authors_folder(p):
        return _authors_generators(p, device)
    ckpt = resolve(path)
    shared = load_file(ckpt / SHARED_FILE)
    cfg = config_from_dict(shared["config"], where=str(ckpt / SHARED_FILE))
    registry = registry or default_registry()
    components.load_recipe_plugins(cfg, registry)
    gens, _ = components.build_networks(cfg, registry)
    try:
        gens.load_state_dict(shared["generators"]["module"])  # plain weights, whatever the strategy
    except RuntimeError as e:
        raise CheckpointError(f"{ckpt}: generator weights do not match their recorded config: {e}") from None
    gens.to(device).eval()
    return Generators(gens.G, gens.F, cfg, ckpt, int(shared["step"]))


def resolve_device(text: str, option: str = "--device") -> torch.device:
    """``auto`` (CUDA if available, else CPU), ``cpu``, ``cuda``, ``cuda:N``, ``mps``; SetupError
    naming ``option`` for a device this machine does not have."""
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(text)
    except (RuntimeError, ValueError):
        raise SetupError(f"{option} {text!r} is not a device; use auto, cpu, cuda or cuda:N") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise SetupError(f"{option} {text}: CUDA is not available on this machine; use {option} cpu (or auto)")
        if dev.index is not None and dev.index >= count:
            raise SetupError(f"{option} {text}: this machine has {count} CUDA device(s), cuda:0..cuda:{count - 1}")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise SetupError(f"{option} {text}: MPS is not available on this machine; use {option} cpu (or auto)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise SetupError(f"{option} {text}: unsupported device type {dev.type!r}; use auto, cpu, cuda or cuda:N")
    return dev


def _authors_generators(path: Path, device: str | torch.device) -> Generators:
    imported = read_paths([path])
    section = imported.section("G")
    if section is None:
        raise CheckpointError(f"{path}: no generator in it (latest_net_G_A.pth or latest_net_G_B.pth)")
    nets = {}
    for name in ("G", "F"):
        if name in imported.nets:
            net = build_authors_network(section)
            net.load_state_dict(imported.nets[name].state)
            nets[name] = net.to(device).eval()
    cfg = config_from_dict({"model": {"generator": section.to_dict()}}, where=str(path))
    return Generators(nets.get("G"), nets.get("F"), cfg, path, 0)


def autocast(device: torch.device, precision: str):
    """The autocast context for ``precision`` (``auto``: bf16 where the hardware has it)."""
    precision = resolve_precision(precision, device)
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "fp16":
        return torch.autocast(device.type, dtype=torch.float16)
    return contextlib.nullcontext()


@torch.inference_mode()
def translate_batch(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Run ``net`` on a batch of any H x W: pad (reflect) up to the network's ``size_multiple``
    and at least its ``min_size`` (default twice the multiple), then crop the output back to H x W."""
    h, w = x.shape[-2:]
    return net(pad_for(net, x))[..., :h, :w].float()


def pad_for(net: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``x`` padded (reflect; replicate when too small) at the bottom and right up to the network's
    ``size_multiple`` and at least its ``min_size`` (default twice the multiple)."""
    m = int(getattr(net, "size_multiple", 1))
    least = int(getattr(net, "min_size", 2 * m))
    h, w = x.shape[-2:]
    ph, pw = max(-(-h // m) * m, least) - h, max(-(-w // m) * m, least) - w
    if ph or pw:
        mode = "reflect" if ph < h and pw < w else "replicate"
        x = F.pad(x, (0, pw, 0, ph), mode=mode)
    return x
