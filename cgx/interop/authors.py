"""The authors' network files (junyanz/pytorch-CycleGAN-and-pix2pix): recognise a state dict by
its key layout, infer the architecture from the keys, and map keys between their layout and cgx's.

Their files are plain state dicts of the bare network (``torch.save(net.state_dict())``):

- ResNet generator: ``model.1.weight`` (first 7x7 conv) ... ``model.{10..10+n-1}.conv_block.*``
  (the n residual blocks) ... the last 7x7 conv at ``model.{n+17}``. Each block's Sequential is
  pad, conv (1), norm, ReLU, [dropout], pad, conv (5, or 6 with dropout), norm. cgx's
  ``resnet`` has the same Sequential; its block calls it ``body`` where theirs says ``conv_block``.
- U-Net generator: nested ``model.model.I.model.J...``; every level below the outermost starts
  with an in-place LeakyReLU at index 0, which cgx's ``unet`` holds outside the Sequential
  (``act``), so below the outermost level their index is cgx's plus one. Dropout has no weights:
  it cannot be seen in a file, and does nothing in eval mode.
- PatchGAN discriminator (``NLayerDiscriminator``): ``model.*``, the same keys as cgx's ``patchgan``.

Convolutions carry a bias exactly when the norm is instance norm (theirs and cgx's); instance norm
has no weights; batch norm has weight, bias and running statistics. Files written by old PyTorch
versions hold ``running_mean``/``running_var``/``num_batches_tracked`` for instance-norm layers:
those are dropped, as the authors' loader does. Any other unexpected key is an error naming it.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..config import ComponentConfig
from ..errors import CheckpointError
from ..untrusted import load_weights_file

STALE_NORM_STATS = ("running_mean", "running_var", "num_batches_tracked")
GENERATORS = ("resnet", "unet")
DISCRIMINATORS = ("patchgan",)
_UNET_KEY = re.compile(r"^model((?:\.model\.\d+)+)\.([A-Za-z_]+)$")


@dataclass
class Network:
    """One network read from an authors' file: the recipe section that builds it, and its weights in cgx's layout."""

    section: ComponentConfig
    state: dict[str, torch.Tensor]
    dropped: list[str]
    """Stale instance-norm statistics that were dropped (old PyTorch files)."""


# --- reading ----------------------------------------------------------------------------------

def read_file(path: str | Path) -> dict[str, torch.Tensor]:
    """An authors' ``.pth`` file as a state dict (loaded with ``weights_only=True``)."""
    path = Path(path)
    state = load_weights_file(path, what="the authors' network file", error=CheckpointError)
    if not isinstance(state, dict) or not state or not all(torch.is_tensor(v) for v in state.values()):
        raise CheckpointError(f"{path}: not a network state dict (a mapping of names to tensors), "
                              f"as the authors' latest_net_G_A.pth files are")
    if hasattr(state, "_metadata"):
        state = dict(state)
    return state


def layout(state: dict) -> str | None:
    """``resnet``, ``unet`` or ``patchgan`` when ``state``'s keys are in that authors' layout, else None."""
    keys = list(state)
    if not keys or not all(k.startswith("model.") for k in keys):
        return None
    if all(k.startswith("model.model.") for k in keys):
        return "unet"
    if any(".conv_block." in k for k in keys) and "model.1.weight" in state:
        return "resnet"
    if "model.0.weight" in state and state["model.0.weight"].dim() == 4:
        return "patchgan"
    return None


def read_generator(path: str | Path) -> Network:
    state = read_file(path)
    kind = layout(state)
    if kind not in GENERATORS:
        raise CheckpointError(f"{path}: not an authors' generator (expected a ResNet generator's keys "
                              f"model.1.weight, model.10.conv_block.1.weight ... or a U-Net's model.model.*)")
    return generator_from_authors(state, str(path))


def read_discriminator(path: str | Path) -> Network:
    state = read_file(path)
    if layout(state) != "patchgan":
        raise CheckpointError(f"{path}: not an authors' PatchGAN discriminator (expected keys model.0.weight, "
                              f"model.2.weight ... as NLayerDiscriminator writes them)")
    return discriminator_from_authors(state, str(path))


def _norm(state: dict, norm_key: str, conv_bias_key: str, where: str) -> str:
    if norm_key + ".weight" in state:
        return "batch"
    if conv_bias_key in state:
        return "instance"
    raise CheckpointError(f"{where}: convolutions without bias and no batch-norm weights ({norm_key}.weight): "
                          f"norm 'none' files are not supported; accepted: instance or batch norm")


def infer_resnet(state: dict, where: str) -> ComponentConfig:
    blocks = sorted({int(k.split(".")[1]) for k in state if ".conv_block." in k})
    if blocks != list(range(10, 10 + len(blocks))):
        raise CheckpointError(f"{where}: residual blocks at model.{blocks} are not numbered model.10, model.11, ... "
                              f"as in the authors' ResnetGenerator")
    n = len(blocks)
    first = state["model.1.weight"]
    last_key = f"model.{n + 17}.weight"
    if last_key not in state:
        raise CheckpointError(f"{where}: missing key {last_key} (the last 7x7 convolution of a {n}-block ResNet generator)")
    second = state.get("model.10.conv_block.6.weight")
    dropout = second is not None and second.dim() == 4
    args = {"in_channels": int(first.shape[1]), "out_channels": int(state[last_key].shape[0]),
            "ngf": int(first.shape[0]), "n_blocks": n, "norm": _norm(state, "model.2", "model.1.bias", where),
            "dropout": dropout}
    return ComponentConfig("resnet", args)


def infer_unet(state: dict, where: str) -> ComponentConfig:
    levels = max(len(m.group(1).split(".")) // 2 for k in state if (m := _UNET_KEY.match(k)))
    first, up = state.get("model.model.0.weight"), state.get("model.model.3.weight")
    if first is None or up is None:
        raise CheckpointError(f"{where}: missing key {'model.model.0.weight' if first is None else 'model.model.3.weight'} "
                              f"(the outermost convolutions of the authors' UnetGenerator)")
    args = {"in_channels": int(first.shape[1]), "out_channels": int(up.shape[1]), "ngf": int(first.shape[0]),
            "num_downs": levels, "norm": _norm(state, "model.model.1.model.2", "model.model.0.bias", where)}
    return ComponentConfig("unet", args)


def infer_patchgan(state: dict, where: str) -> ComponentConfig:
    convs = sorted(int(k.split(".")[1]) for k, v in state.items() if k.endswith(".weight") and v.dim() == 4)
    first = state["model.0.weight"]
    args = {"in_channels": int(first.shape[1]), "ndf": int(first.shape[0]), "n_layers": len(convs) - 2,
            "norm": _norm(state, "model.3", "model.2.bias", where)}
    return ComponentConfig("patchgan", args)


# --- key maps -----------------------------------------------------------------------------------

def to_cgx_key(kind: str, key: str) -> str:
    """An authors' key as cgx's network of that kind names it."""
    if kind == "resnet":
        return key.replace(".conv_block.", ".body.")
    if kind == "unet":
        return _shift_unet(key, -1)
    return key


def to_authors_key(kind: str, key: str) -> str:
    """A cgx key as the authors' network of that kind names it."""
    if kind == "resnet":
        return key.replace(".body.", ".conv_block.")
    if kind == "unet":
        return _shift_unet(key, +1)
    return key


def _shift_unet(key: str, by: int) -> str:
    """Shift the Sequential index of every U-Net level below the outermost by ``by``."""
    m = _UNET_KEY.match(key)
    if m is None:
        return key
    parts = m.group(1).split(".")[1:]  # model, I, model, J, ...
    out = []
    for level, i in enumerate(range(0, len(parts), 2)):
        idx = int(parts[i + 1]) + (by if level > 0 else 0)
        out += ["model", str(idx)]
    return "model." + ".".join(out) + "." + m.group(2)


# --- conversion ---------------------------------------------------------------------------------

def build(section: ComponentConfig) -> nn.Module:
    from .. import plugins

    kind = "generator" if section.name in GENERATORS else "discriminator"
    return plugins.create(kind, section.name, **section.args)


def generator_from_authors(state: dict, where: str) -> Network:
    kind = layout(state)
    section = infer_resnet(state, where) if kind == "resnet" else infer_unet(state, where)
    return _convert(state, section, where)


def discriminator_from_authors(state: dict, where: str) -> Network:
    return _convert(state, infer_patchgan(state, where), where)


def _convert(state: dict, section: ComponentConfig, where: str) -> Network:
    """Map every key into cgx's layout and check it against a freshly built cgx network: stale
    instance-norm statistics are dropped; unexpected keys, missing keys and wrong shapes are errors."""
    net = build(section)
    expected = net.state_dict()
    instance_norms = {name for name, m in net.named_modules() if isinstance(m, nn.InstanceNorm2d)}
    out, dropped = {}, []
    for key, value in state.items():
        ours = to_cgx_key(section.name, key)
        if ours in expected:
            if tuple(value.shape) != tuple(expected[ours].shape):
                raise CheckpointError(f"{where}: {key} has shape {tuple(value.shape)}, a {_describe(section)} "
                                      f"needs {tuple(expected[ours].shape)}")
            out[ours] = value
            continue
        module, _, leaf = ours.rpartition(".")
        if leaf in STALE_NORM_STATS and module in instance_norms:
            dropped.append(key)
            continue
        raise CheckpointError(f"{where}: unexpected key {key!r} for a {_describe(section)} in the authors' layout")
    missing = [k for k in expected if k not in out]
    if missing:
        raise CheckpointError(f"{where}: missing key {to_authors_key(section.name, missing[0])!r} "
                              f"for a {_describe(section)} in the authors' layout")
    return Network(section, out, dropped)


def _describe(section: ComponentConfig) -> str:
    args = ", ".join(f"{k}={v}" for k, v in section.args.items())
    return f"{section.name} ({args})"


def to_authors(section: ComponentConfig, state: dict, where: str) -> dict[str, torch.Tensor]:
    """cgx weights of the network ``section`` builds, in the authors' layout and naming."""
    supported = GENERATORS + DISCRIMINATORS
    if section.name not in supported:
        raise CheckpointError(f"{where}: the authors' code has no {section.name!r} network; "
                              f"accepted for --format authors: {', '.join(supported)}")
    norm = section.args.get("norm", "instance")
    if norm not in ("instance", "batch"):
        raise CheckpointError(f"{where}: {section.name} with norm={norm!r} has no authors' equivalent "
                              f"(their norm 'none' drops the conv biases); accepted: instance, batch")
    if section.args.get("spectral_norm"):
        raise CheckpointError(f"{where}: patchgan with spectral_norm=true has no authors' equivalent")
    return {to_authors_key(section.name, k): v.detach().cpu().clone() for k, v in state.items()}
