"""``train.init_from``: a new run's networks start from existing weights (optimizers, schedules,
image pools and the step count start fresh).

Accepted: a cgx run folder (newest checkpoint), checkpoint folder or ``train.pt`` (all four
networks), an authors' checkpoint folder (``latest_net_G_A.pth`` ...; pix2pix's ``latest_net_G.pth``,
``latest_net_D.pth`` for a pix2pix recipe) or authors' network files
(``a.pth,b.pth``: as ``cgx import`` reads them). The weights must fit the recipe's networks.
"""
from __future__ import annotations

from pathlib import Path

from torch import nn

from ..errors import CheckpointError
from ..train.checkpoint import SHARED_FILE, read_generators
from .sources import is_authors_folder, read_paths


def load_initial_weights(spec: str, groups: dict[str, nn.Module]) -> str:
    """Load the weights ``spec`` names into the bare network groups (by name); returns a one-line
    description of what was loaded from where."""
    paths = [Path(p) for p in spec.split(",") if p]
    first = paths[0] if paths else Path(spec)
    if len(paths) == 1 and not first.suffix == ".pth" and not is_authors_folder(first):
        return _from_cgx(first, groups)
    imported = read_paths(paths)
    targets = {name: net for group in groups.values() for name, net in group.named_children()}  # G, F, D_A, D_B; pix2pix: G, D
    for name, net in imported.nets.items():
        if name not in targets:
            raise CheckpointError(f"train.init_from: {imported.files[name]} is a {imported.method} network ({name}); "
                                  f"the recipe's method has {', '.join(targets)}")
        misfit = first_misfit(net.state, targets[name])
        if misfit is not None:
            raise CheckpointError(f"train.init_from: {imported.files[name]} ({net.section.to_dict()}) does not fit the "
                                  f"recipe's network {name}: {misfit}")
        targets[name].load_state_dict(net.state)
    return ", ".join(f"{n} from {p}" for n, p in imported.files.items())


def _from_cgx(path: Path, groups: dict[str, nn.Module]) -> str:
    """Every group of the recipe from the checkpoint's group of that name; the generators and discriminators
    must be there, another group the checkpoint lacks (a run without it) starts fresh, as said."""
    weights = read_generators(path, "raw")  # the trained weights, as the run would go on from them
    ckpt, saved = weights.checkpoint, weights.groups or {}
    loaded, fresh = [], []
    for name, group in groups.items():
        state = saved.get(name)
        if state is None and name not in ("generators", "discriminators"):
            fresh.append(name)
            continue
        misfit = f"no {name} in it" if state is None else first_misfit(state, group)
        if misfit is not None:
            raise CheckpointError(f"train.init_from: {ckpt / SHARED_FILE}: its {name} do not fit the recipe's: "
                                  f"{misfit} (use the model section of the recipe it was trained with)")
        group.load_state_dict(state)
        loaded.append(name)
    return (f"{' and '.join(loaded)} from {ckpt}"
            + (f" ({', '.join(fresh)}: not in it, initialised as a new run's)" if fresh else ""))


def first_misfit(state: dict, target: nn.Module) -> str | None:
    """Why ``state`` cannot load into ``target``, naming the first key that differs (a shape, both
    shapes), or None where it fits exactly."""
    own = target.state_dict()
    for key, value in own.items():
        if key not in state:
            return f"key '{key}' is missing from the file (the recipe's network has it, shape {_shape(value)})"
        theirs = state[key]
        if getattr(theirs, "shape", None) != value.shape:
            return (f"key '{key}' has shape {_shape(theirs)} in the file, {_shape(value)} in the recipe's network "
                    f"(ngf/ndf, n_blocks, n_layers or channels differ?)")
    extra = [k for k in state if k not in own]
    if extra:
        return f"key '{extra[0]}' of the file is not in the recipe's network ({len(extra)} such keys)"
    return None


def _shape(value) -> str:
    shape = getattr(value, "shape", None)
    return f"[{', '.join(str(n) for n in shape)}]" if shape is not None else type(value).__name__
