"""Using trained generators: load them from a checkpoint, translate images of any size."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .config import Config, config_from_dict
from .choices import DIRECTIONS
from .errors import PluginError, SetupError
from .interop.authors import build as build_authors_network
from .interop.sources import is_authors_folder, read_paths
from .plugins import Registry, default_registry
from .train import components
from .train.groups import build_inference_group
from .train.checkpoint import SHARED_FILE, CheckpointError, read_generators


@dataclass
class Generators:
    G: nn.Module | None  # A -> B
    F: nn.Module | None  # B -> A (one of the two is None for a single authors' generator file)
    config: Config
    checkpoint: Path
    step: int
    weights: str = "raw"
    """Which generator weights were loaded: raw or ema (``train.ema``)."""

    def net(self, direction: str) -> nn.Module:
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be AtoB or BtoA, got {direction!r}")
        net = self.G if direction == "AtoB" else self.F
        if net is None:
            has = "AtoB" if self.F is None else "BtoA"
            raise CheckpointError(f"{self.checkpoint} holds no {direction} generator, only {has}; use --direction "
                                  f"{has} (method {self.config.method.name})")
        return net


def load_generators(path: str | Path, device: str | torch.device = "cpu", registry: Registry | None = None,
                    plugins: Sequence[str] = (), weights: str = "auto") -> Generators:
    """Generators from a checkpoint folder, a run folder (newest checkpoint) or a ``train.pt``; or
    from the authors' files: a checkpoint folder (``latest_net_G_A.pth``: A -> B, ``latest_net_G_B.pth``:
    B -> A) or one generator file (A -> B, or B -> A if it is named ``*net_G_B.pth``).

    No code named by the checkpoint runs: its recipe's ``plugins`` (modules the training run loaded)
    are not imported. The generator must be a built-in or installed plugin, or come from one of the
    modules the user names in ``plugins`` (``--plugins``: importable names or ``.py`` paths).
    ``weights``: ``auto`` (the run's EMA weights where it kept them, ``train.ema``), ``ema`` or ``raw``."""
    p = Path(path)
    if (p.is_file() and p.name != SHARED_FILE) or is_authors_folder(p):
        if weights == "ema":
            raise CheckpointError(f"{p}: --weights ema, but the authors' files hold one set of weights; use --weights raw")
        return _authors_generators(p, device)
    choice = weights
    weights = read_generators(path, choice)
    where = str(weights.checkpoint / SHARED_FILE)
    cfg = config_from_dict(weights.config, where=where)
    registry = registry or default_registry()
    for spec in plugins:
        try:
            registry.load_module(spec)
        except PluginError as e:
            raise PluginError(f"--plugins {spec}: {e}") from None
    for key, kind, name in (("method", "method", cfg.method.name), ("model.generator", "generator", cfg.model.generator.name)):
        if name not in registry.available(kind):
            stored = stored_plugins(cfg)
            loaded = f"; the run loaded plugin modules {', '.join(stored)}" if stored else ""
            files = [s for s in stored if s.endswith(".py") and Path(s).is_file()]
            module = shlex.quote(files[0]) if len(files) == 1 else "MODULE_OR_FILE.py"
            raise PluginError(
                f"{where}: its {kind} {name!r} ({key}.name) is not a built-in or installed plugin{loaded}. "
                f"A checkpoint runs no code of its own: name the module that registers {name!r} with --plugins "
                f"{module} if you trust it ({kind}s available: {', '.join(registry.available(kind))})")
    check_network_size(cfg, registry, where)
    method = components.build_method(cfg, registry, where)
    gens = build_inference_group(cfg, method, components.RecipeComponents(cfg, registry, where), where=where)
    try:
        gens.load_state_dict(weights.state)  # plain weights, whatever the strategy
    except RuntimeError as e:
        raise CheckpointError(f"{where}: generator weights do not match their recorded config: "
                              f"{str(e).splitlines()[0]}") from None
    gens.to(device).eval()
    nets = method.translators(gens)
    return Generators(nets.get("AtoB"), nets.get("BtoA"), cfg, weights.checkpoint, weights.step, weights.weights)


def stored_plugins(cfg: Config) -> list[str]:
    """The plugin modules a run's recipe loaded, as a user here names them: a ``.py`` path relative to the
    training recipe's folder that exists from here is given relative to the working directory (or
    absolute), so that ``--plugins`` takes it as printed; anything else as the recipe wrote it."""
    base = Path(cfg.recipe).parent if cfg.recipe else None
    out = []
    for spec in cfg.plugins:
        path = Path(spec)
        if base is not None and spec.endswith(".py") and not path.is_absolute() and (base / path).is_file():
            full = (base / path).resolve()
            here = Path.cwd().resolve()
            spec = str(full.relative_to(here)) if full.is_relative_to(here) else str(full)
        out.append(spec)
    return out


MAX_GENERATOR_PARAMETERS = 2**30
"""The most parameters a checkpoint's generators may ask for (4 GiB in fp32; CycleGAN's are 11 M)."""


def check_network_size(cfg: Config, registry: Registry, where: str) -> None:
    """Refuse a recipe (from a checkpoint: its author's) whose generators would be absurdly large
    (``ngf: 8192``), before allocating them: they are built on the meta device and counted."""
    try:
        with torch.device("meta"):
            gens = components.build_generators(cfg, registry, where=where)
        n = sum(p.numel() for p in gens.parameters())
    except Exception:  # noqa: BLE001 -- a network that cannot be built so is checked by the real build
        return
    if n > MAX_GENERATOR_PARAMETERS:
        raise CheckpointError(f"{where}: its recipe asks for generators of {n / 1e6:,.0f} M parameters "
                              f"(model.generator: {cfg.model.generator.to_dict()}); more than "
                              f"{MAX_GENERATOR_PARAMETERS / 1e6:,.0f} M are refused before allocating them")


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
            net = build_authors_network(imported.nets[name].section)  # its own channels (input_nc, output_nc)
            net.load_state_dict(imported.nets[name].state)
            nets[name] = net.to(device).eval()
    method = {"name": "pix2pix", "direction": "AtoB"} if imported.method == "pix2pix" else \
        {"name": "cyclegan", **imported.method_settings()}
    cfg = config_from_dict({"model": {"generator": imported.generator_section().to_dict()},
                            "data": imported.data_channels(), "method": method}, where=str(path))
    return Generators(nets.get("G"), nets.get("F"), cfg, path, 0)


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
