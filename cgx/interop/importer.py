"""``cgx import``: a cgx run folder from the authors' files, ready to fine-tune or translate with.

The folder gets ``config.yaml`` (a recipe whose model sections match the imported networks and
whose ``train.run_dir`` is the folder) and ``checkpoints/step_00000000/train.pt`` in cgx's normal
checkpoint format (networks, fresh optimizers and schedules, step 0). ``torchrun -m cgx.run
RUN_DIR/config.yaml data.root=...`` then resumes from that step-0 checkpoint, i.e. fine-tunes.
Networks that were not given (a single pretrained generator has no partner nor discriminators)
start from the recipe's initialisation, as in a new run.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import torch

from ..config import Config, config_from_dict, dump_config, load_config
from ..errors import CheckpointError
from ..plugins import default_registry
from ..run_dir import RunDir
from ..train import components
from ..train.checkpoint import shared_meta, write_checkpoint
from ..train.optim import build_optimizer
from ..train.rng import seed_everything
from ..train.schedule import linear_decay
from .sources import Imported, read_paths


@dataclass
class ImportResult:
    run_dir: Path
    recipe: Path
    checkpoint: Path
    sources: dict[str, Path]
    fresh: list[str]
    dropped: int


def recipe_for(imported: Imported, base: str | Path | None, run_dir: Path, overrides: list[str] = ()) -> Config:
    """The base recipe (or the defaults) with the imported networks' sections and ``train.run_dir``."""
    cfg = load_config(base, list(overrides))
    raw = cfg.to_dict()
    raw["recipe"] = None
    for key, section in (("generator", imported.generator_section()), ("discriminator", imported.discriminator_section())):
        if section is not None:
            raw["model"][key] = section.to_dict()
    for d, spec in imported.data_channels().items():  # the authors' input_nc / output_nc
        raw["data"][d]["channels"] = spec["channels"]
    if imported.method == "pix2pix":  # their pix2pix: paired data, vanilla GAN, no pool (recipes/pix2pix_256.yaml)
        given = raw["method"] if raw["method"].get("name") == "pix2pix" else {}
        raw["method"] = {"name": "pix2pix", "direction": raw["method"].get("direction", "AtoB"),
                         "l1_weight": given.get("l1_weight", 100.0)}
        raw["data"]["paired"] = True
        if base is None:
            raw["loss"]["gan"], raw["buffer"] = {"name": "vanilla"}, {"name": "none"}
    else:
        raw["method"].update(imported.method_settings())  # the authors' networks are CycleGAN's
    raw["train"]["run_dir"] = str(run_dir)
    return config_from_dict(raw, where=str(base) if base else "<imported>")


def import_run(paths: list[str | Path], out: str | Path, *, base_recipe: str | Path | None = None,
               overrides: list[str] = (), epoch: str = "latest") -> ImportResult:
    """Read the authors' files at ``paths`` and write a cgx run folder at ``out`` (which must not
    exist or be empty: an import never overwrites a run)."""
    out = Path(out).resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise CheckpointError(f"{out} already exists and is not empty; cgx import writes a new run folder "
                              f"(choose another --out, or remove it yourself)")
    imported = read_paths(list(paths), epoch)
    cfg = recipe_for(imported, base_recipe, out, overrides)
    if cfg.distributed.strategy != "ddp":
        raise CheckpointError(f"cgx import writes a DDP checkpoint; distributed.strategy={cfg.distributed.strategy} "
                              f"cannot resume from it: import without it, or start a DeepSpeed run with "
                              f"train.init_from={','.join(map(str, paths))}")
    registry = default_registry()
    components.check_components(cfg, registry)
    seed_everything(cfg.train.seed)  # the networks not imported start as a new run's would
    groups = components.build_networks(cfg, registry)
    parts = {name: net for group in groups.values() for name, net in group.named_children()}  # G, F, D_A, D_B; pix2pix: G, D
    for name, net in imported.nets.items():
        parts[name].load_state_dict(net.state, strict=True)
    state = step0_state(cfg, groups)

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = RunDir(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
    try:
        write_checkpoint(tmp.checkpoint(0), state)
        dump_config(cfg, tmp.config)
        if out.exists():
            out.rmdir()  # empty, checked above
        os.replace(tmp.root, out)
    except BaseException:
        shutil.rmtree(tmp.root, ignore_errors=True)
        raise
    run = RunDir(out)
    return ImportResult(out, run.config, run.checkpoint(0), dict(imported.files),
                        [n for n in parts if n not in imported.nets], sum(len(n.dropped) for n in imported.nets.values()))


def step0_state(cfg: Config, groups: dict) -> dict:
    """``train.pt`` of a run at step 0, as ``Trainer.save`` writes it (DDP strategy, one rank):
    every network group, fresh optimizers and lr schedules, the recipe."""
    factor = linear_decay(1, 0)  # the schedule's state holds no lambda; the trainer sets its own
    optimizers = {name: build_optimizer(group.parameters(), cfg.optim.for_group(name)) for name, group in groups.items()}
    return {
        **shared_meta(0, 1, "ddp", cfg.to_dict()),
        "groups": {name: {"module": group.state_dict(), "optimizer": optimizers[name].state_dict()}
                   for name, group in groups.items()},
        "schedules": {name: torch.optim.lr_scheduler.LambdaLR(opt, factor).state_dict()
                      for name, opt in optimizers.items()},
    }
