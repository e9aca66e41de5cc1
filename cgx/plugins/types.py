"""The plugin contract: what each kind of component is, and the values the trainer hands them.

A plugin author reads this module and nothing of the trainer. Every object a registered factory
returns is checked against its kind's Protocol when it is built (``Registry.create``); one that does
not fit stops the run before step 1 with the plugin's name, its source and what is missing. The kinds
themselves (hook, Protocol, recipe key) are declared once, in ``cgx.plugins.kinds``.

    from cgx.plugins.types import AdversarialLoss, DiscriminatorBatch, Scores

Kinds and the recipe keys that select them:

==================== =============================== ========================================
kind                 Protocol                         recipe key
==================== =============================== ========================================
generator            :class:`Generator`               ``model.generator``
                     (optional: :class:`FeatureGenerator`)
discriminator        :class:`Discriminator`           ``model.discriminator``
adversarial_loss     :class:`AdversarialLoss`         ``loss.gan``
reconstruction_loss  :class:`ReconstructionLoss`      ``loss.cycle`` (cycle and identity terms)
buffer               :class:`Buffer`                  ``buffer``
                     (optional: :class:`ResizableBuffer`)
logger               :class:`Logger`                  ``logging.backends`` (a list: every one named gets
                     (with :class:`LogRun`)           every event)
augment              :class:`Augment`                 ``augment`` (off: ``none``)
                     (optional: :class:`AdaptiveAugment`)
segmenter            :class:`Segmenter`               ``method.semantic.network`` (built by the method)
==================== =============================== ========================================
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, ContextManager, Iterator, Mapping, Protocol, Sequence, Union, runtime_checkable

import numpy as np
import torch
from torch import nn

from ..run_dir import RunDir

Scores = Union[torch.Tensor, Sequence[torch.Tensor]]
"""A discriminator's output: one score tensor, or a list of them (multi-output discriminators: one
per scale or head). Batch first; raw logits, no sigmoid; possibly bf16/fp16 under autocast."""


@dataclass
class DiscriminatorBatch:
    """What an adversarial loss may need beyond the scores (a gradient penalty needs all of it)."""

    discriminator: nn.Module
    """This domain's discriminator, bare (not the DDP/DeepSpeed wrapper): an extra forward pass
    through it does not synchronise ranks."""
    real: torch.Tensor
    """The real images that were scored."""
    fake: torch.Tensor
    """The fakes that were scored (drawn from the history buffer)."""
    autocast: Callable[[], ContextManager]
    """The run's autocast context, for extra forward passes: ``with batch.autocast(): ...``."""


@runtime_checkable
class Generator(Protocol):
    """An ``nn.Module`` mapping a (N, C, H, W) batch in [-1, 1] to one of the same shape in [-1, 1].

    Optional attributes: ``size_multiple`` (int: inputs must be a multiple of it) and ``min_size``
    (int), to which ``cgx translate`` pads images; ``per_sample`` (bool): True when a sample's output
    does not depend on the other samples of its batch (instance norm or none; not batch norm), which
    lets the trainer run G on [a; b] for G(a) and the identity G(b) in one call.

    Optional methods (the built-in ``resnet`` and ``unet`` have both):

    - ``enable_activation_checkpointing() -> None``: from then on, when gradients are enabled,
      recompute activations in backward (``torch.utils.checkpoint``, ``use_reentrant=False``)
      instead of keeping them, with the same gradients. Called once after the network is built when
      ``train.activation_checkpointing`` is true; a generator without it is refused with its name.
    - ``tiling_stages() -> list[nn.Module]``: modules whose application in sequence is ``forward``
      (in eval mode; the same parameters), each made only of layers ``cgx.tiling`` knows
      (convolutions, transposed convolutions, pads, instance norm, eval-mode batch norm, upsampling,
      dropout and pointwise activations) combined by local operations (residual add, channel
      concatenation): nothing that looks at the whole image (global pooling, attention). Declaring
      it makes the generator usable by ``cgx translate --tile``, which computes instance norm
      statistics over the whole image; a generator without it, or with a layer of another type, is
      refused with its name. The tiled result equals the untiled one; a stage boundary is where the
      engine keeps a whole-image feature map, so a stage per low-resolution block keeps recomputation low."""

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict: ...
    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> Any: ...


@runtime_checkable
class FeatureGenerator(Generator, Protocol):
    """A :class:`Generator` that also exposes its encoder's features: an optional part of the generator
    kind, which methods with a feature loss (CUT's PatchNCE) require and check for when they build
    (``isinstance(net, FeatureGenerator)``); a generator without it is refused naming the method.
    The built-in ``resnet`` has it (``layers`` index its ``model`` modules, as the CUT authors' do)."""

    def encode_features(self, x: torch.Tensor, layers: Sequence[int]) -> list[torch.Tensor]:
        """The (N, C_i, H_i, W_i) features of encoder layers ``layers`` for input ``x``, in that order.
        ValueError (naming the accepted range) for a layer that is not in the encoder."""

    def feature_channels(self, layers: Sequence[int]) -> list[int]:
        """C_i of each of those features, without running the network (projection heads are built
        from it before the networks are wrapped)."""


@runtime_checkable
class Discriminator(Protocol):
    """An ``nn.Module`` mapping images to :data:`Scores`. The trainer calls it on real and fake
    images concatenated and splits the scores by batch, so samples must not mix (no batch norm for a
    gradient penalty). Parameters it freezes itself stay frozen."""

    def forward(self, x: torch.Tensor) -> Scores: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict: ...
    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> Any: ...

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        """(channels, h, w) of each score tensor for a height x width input, one per output."""


@runtime_checkable
class AdversarialLoss(Protocol):
    """The GAN objective (``loss.gan``). Compute in fp32: the trainer calls it outside autocast."""

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        """Scalar: the generator wants its fakes scored as real."""

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores,
                           batch: DiscriminatorBatch) -> torch.Tensor:
        """Scalar: the discriminator's loss on real and (history-buffer) fake scores."""

    # Optional attribute ``decision_boundary`` (float, default 0): the score between what the loss pushes
    # real images to and what it pushes fakes to (lsgan: the mean of its two labels), from which an adaptive
    # augmentation (:class:`AdaptiveAugment`) counts how many real scores fall on the real side.


@runtime_checkable
class ReconstructionLoss(Protocol):
    """The cycle and identity distance (``loss.cycle``): ``loss(output, target) -> scalar``."""

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class Buffer(Protocol):
    """The history of generated images the discriminator sees (``buffer``). Its state is saved per
    rank with every checkpoint and loaded with ``weights_only=True``: tensors, numbers, strings."""

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """Images for the discriminator instead of the current fakes ``images`` (same shape)."""

    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class ResizableBuffer(Buffer, Protocol):
    """A buffer that carries over to another world size: the optional methods of ``buffer``. A run resumed
    on another number of ranks merges the states every rank saved into one global pool and gives each new
    rank its share. A buffer without them still works: on a world-size change it starts empty (one line
    says so), as every buffer did before."""

    def merge_states(self, states: list[dict]) -> dict:
        """One global state from ``states``, the ``state_dict()`` of this buffer on every rank of the run
        that saved them, in rank order (a ValueError when they do not fit the recipe)."""

    def load_share(self, pool: dict, rank: int, world_size: int, seed: int) -> None:
        """Take rank ``rank``'s share of the global state ``pool`` (from ``merge_states``) in a run of
        ``world_size`` ranks, deterministically; seed any random generator of the buffer with ``seed``."""


# --- discriminator augmentation -------------------------------------------------------------------

@runtime_checkable
class Augment(Protocol):
    """Augmentation of every image a discriminator sees (``augment``). The engine applies it to the input of
    every discriminator built from ``model.discriminator`` at every call (a forward pre-hook installed when
    the network is built): reals and fakes, in the discriminator's and the generator's phase, a gradient
    penalty's extra pass, a conditional discriminator's concatenated pair (as one image), every method alike.

    ``__call__(images)`` returns a batch of the same shape and dtype, differentiable in ``images`` (the
    generator learns through it), drawing its randomness per sample from torch's generator on the images'
    device (each rank's random state is in every checkpoint, so a resumed run draws the same). It holds no
    parameters. ``augment: none`` (the default) builds and installs nothing."""

    def __call__(self, images: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class AdaptiveAugment(Augment, Protocol):
    """An :class:`Augment` steered by the discriminator's scores of real images (ADA). The engine moves it
    to the run's device once (``to``), shows it the scores of the reals in every discriminator loss
    (``observe``), calls ``update`` after every training step on every rank, logs ``scalars()`` as
    ``augment/<name>`` on log steps and saves its state with every checkpoint (rank 0's; it must be the same
    on every rank), restoring it on resume."""

    def to(self, device: torch.device) -> Any: ...

    def observe(self, real_scores: Scores, boundary: float) -> None:
        """The discriminator's (detached) scores of the real images of one loss call, and the loss's
        ``decision_boundary``. Keep it on the device: no ``.item()``."""

    def update(self, images: int, reduce: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """After a step that showed the discriminators ``images`` real images on all ranks together.
        ``reduce(t)`` sums a tensor over ranks (collective: call it the same number of times on every rank)."""

    def scalars(self) -> Mapping[str, torch.Tensor]: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class Segmenter(Protocol):
    """An ``nn.Module`` mapping images (N, C, H, W) in [-1, 1] to raw class logits (N, classes, H, W) at
    the input's resolution (any height and width; no softmax). The factory is called with ``in_channels``
    and ``classes`` from the data (``data.a.channels``, ``data.a.labels.classes``), which a recipe may not
    set to other values; ``classes`` is kept as an attribute. Samples must not mix in eval mode; the
    semantic consistency term runs it frozen on generated images (the gradient reaches the images)."""

    classes: int

    def forward(self, x: torch.Tensor) -> torch.Tensor: ...
    def parameters(self, recurse: bool = True) -> Iterator[nn.Parameter]: ...
    def state_dict(self, *args: Any, **kwargs: Any) -> dict: ...
    def load_state_dict(self, state_dict: dict, strict: bool = True, assign: bool = False) -> Any: ...


# --- methods ---------------------------------------------------------------------------------------

@runtime_checkable
class Trainable(Protocol):
    """A network group as the engine handed it to a method's step: wrapped (DDP or a DeepSpeed engine)
    with its optimizer. Named the way PyTorch names a wrapped model."""

    module: nn.Module
    """The bare group: call it for forward passes that must not synchronise ranks (a frozen
    discriminator in the generator phase, a gradient penalty's extra pass)."""
    optimizer: torch.optim.Optimizer
    """The group's own optimizer (``optim`` with ``optim.<group>`` over it)."""
    name: str
    """The group's name (``generators``, ``discriminators``, ...)."""
    updates: bool
    """Whether the group's optimizer steps at this step (``optim.<group>.update_every``; always True by
    default). When False, calling it runs the bare group (no synchronisation), and ``backward`` and
    ``step`` do nothing: a step may skip the group's phase, or run it for its logged losses alone."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """A forward pass that trains, through the wrapper (gradients synchronised across ranks)."""

    def backward(self, loss: torch.Tensor) -> None: ...

    def step(self) -> None:
        """Optimizer step, then zero the gradients."""


class Components(Protocol):
    """What a method builds its parts from: each call builds a new component from the recipe's section
    for it (``model.generator``, ``model.discriminator``, ``loss.gan``, ``loss.cycle``, ``buffer``).
    Networks get their channel counts from the data: a generator from domain ``source`` to ``target``
    (``"A"`` or ``"B"``), a discriminator of ``domain``. ``overrides`` are arguments the method fixes
    (a conditional discriminator's ``in_channels``); a recipe that sets one of them to another value is
    refused, naming the key."""

    def channels(self, domain: str) -> int:
        """Domain ``A``'s or ``B``'s channel count (``data.a.channels``, ``data.b.channels``)."""

    def generator(self, source: str = "A", target: str = "B", **overrides: Any) -> Generator: ...
    def discriminator(self, domain: str = "A", **overrides: Any) -> Discriminator: ...
    def adversarial_loss(self) -> AdversarialLoss: ...
    def reconstruction_loss(self) -> ReconstructionLoss: ...
    def buffer(self) -> Buffer: ...

    def labels(self, domain: str) -> Any:
        """Domain ``A``'s or ``B``'s label spec (``data.a.labels``: ``.classes``, ``.ignore_index``), or None
        where the domain has no labels."""

    def segmenter(self, section: Mapping[str, Any], classes: int, domain: str = "A",
                  key: str = "segmenter") -> "Segmenter":
        """A :class:`Segmenter` from a section the method holds (``{"name": "unet", "width": 16}``), for
        ``domain``'s channel count and ``classes`` classes; errors name the recipe's ``key``."""

    starts_run: bool
    """True only where the networks built start a training run at step 0: the place to load pretrained
    weights a method's own section names (``method.semantic.init_from``). False for a resume and for
    translate, eval and export, whose checkpoint's weights replace them: such a file is then not read, so a
    run outlives it."""


@dataclass
class StepResult:
    """What one training step reports. ``losses, images = step(real_a, real_b)`` unpacks it."""

    losses: dict[str, torch.Tensor]
    """Detached scalar tensors by tag (``G/gan_AtoB``, ``D/A``): kept on the device, logged as
    ``loss/<tag>``; tags starting ``G/`` and ``D/`` add up to the progress bar's G and D."""
    images: dict[str, list[torch.Tensor]]
    """Grid title -> rows of image batches in [-1, 1], logged every ``train.image_every`` steps."""

    def __iter__(self):
        return iter((self.losses, self.images))


@runtime_checkable
class MethodStep(Protocol):
    """One training step of a method, with the method's own per-rank state (history buffers, ...),
    which is saved with every checkpoint (``weights_only``: tensors, numbers, strings) and restored
    on resume."""

    def __call__(self, real_a: torch.Tensor, real_b: torch.Tensor) -> StepResult: ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


@runtime_checkable
class Method(Protocol):
    """A training method (``method``): CycleGAN, CUT, ... It declares its named network groups, its step
    over them and which network translates which way; the engine does everything else for every method
    alike: seeding (the same initial weights on every rank), placement, precision (the step gets the
    run's ``autocast``), compilation, distribution (each group wrapped once, by DDP or DeepSpeed, with its
    own optimizer and lr schedule from ``optim`` and ``optim.<group>``), data, checkpoints and exact
    resume of every group, stop requests, logging (``lr/<group>``) and evaluation.

    Groups are named by identifiers. ``generators`` is required: it is what inference loads from a
    checkpoint and hands to ``translators`` (and what ``train.ema`` averages). ``discriminators`` is the
    conventional name of the adversaries; any further group (``segmenter``, ``classifier``, an encoder
    with its own optimizer) is the method's own. Each group must hold every parameter it will ever train
    when it is built (DDP and DeepSpeed register parameters once): build lazily created layers up front.

    Optional attributes: ``paired`` (bool, default False): the data mode the method asks for. True: the
    method learns from pairs (pix2pix): the engine refuses a recipe without ``data.paired=true``, and each
    step's ``real_a[i]`` and ``real_b[i]`` are the two images of one pair, cropped and flipped alike
    (``cgx.data.paired``). False: the method learns from two unpaired domains; given paired data, it gets
    the same batches and must not rely on which image goes with which (CycleGAN never compares a with b).
    ``translators`` names the directions the method learns; a method that learns one (pix2pix's
    ``direction``) returns only that one.

    The first form of the kind (:class:`MethodV1`: ``build_generators`` and ``build_discriminators``,
    ``build_step(generators, discriminators, make, autocast)``) is still accepted: the engine reads it as
    the two groups ``generators`` and ``discriminators`` (``cgx.train.groups.as_groups_method``)."""

    def groups(self, make: Components) -> Mapping[str, nn.Module]:
        """The network groups, bare, by name, in the order they are built (the seeded initial weights depend
        on it): every network each phase trains. Called with the same seed on every rank; also called
        for inference, which keeps the ``generators`` group."""

    def build_step(self, groups: Mapping[str, Trainable], make: Components,
                   autocast: Callable[[], ContextManager]) -> MethodStep:
        """The step over the wrapped groups (same names as ``groups``). Called after every rank is seeded
        differently (history buffers and other randomness differ by rank). A group's ``updates`` tells
        whether its optimizer steps at this step (``optim.<group>.update_every``): a step may skip the
        phase of a group that does not; calling it anyway is harmless (no gradient, no update)."""

    def translators(self, generators: nn.Module) -> dict[str, nn.Module]:
        """Direction (``AtoB``, ``BtoA``) -> the bare network of the ``generators`` group that translates
        it; a direction the method does not learn is absent (translate, eval and export name it)."""


@runtime_checkable
class MethodV1(Protocol):
    """The first form of the method kind, still accepted: exactly two groups, built by two calls. The
    engine reads it as a :class:`Method` with the groups ``generators`` and ``discriminators``."""

    def build_generators(self, make: Components) -> nn.Module:
        """The generator group, bare. Called with the same seed on every rank, before
        ``build_discriminators``; also used alone for inference."""

    def build_discriminators(self, make: Components) -> nn.Module:
        """The discriminator group, bare."""

    def build_step(self, generators: Trainable, discriminators: Trainable, make: Components,
                   autocast: Callable[[], ContextManager]) -> MethodStep:
        """The step over the two wrapped groups."""

    def translators(self, generators: nn.Module) -> dict[str, nn.Module]:
        """As :meth:`Method.translators`."""


# --- loggers ---------------------------------------------------------------------------------------

EVENTS = ("checkpoint", "best")
"""The events a logger's ``event`` receives, with their fields: ``checkpoint`` (``path``: the checkpoint
folder just written) and ``best`` (``metric``, ``value``, ``checkpoint``: the evaluation that became the
best so far, and where its checkpoint is kept)."""


@dataclass(frozen=True)
class LogRun:
    """What a logger is told when it opens: the run and where this launch starts."""

    folder: RunDir
    """The run folder's paths (``cgx.run_dir.RunDir``): a logger writes only into its own part of it
    (``folder.logger_dir(name)`` for a logger that is not built in)."""
    name: str
    """The run's name (its folder's name): what a tracking server may show."""
    start_step: int
    """0 for a new run (a launch that starts at step 0 is one, even in a folder where an earlier launch
    logged without ever writing a checkpoint: what that one left is dropped or left behind); the step
    of the checkpoint a resumed run continues from. The engine logs every step after it again, with
    the same values (resume is exact; only timings differ): records a previous launch made after
    ``start_step`` are the logger's to drop, replace or skip, so that each step is held once."""
    total_steps: int
    """The run's last step."""


@runtime_checkable
class Logger(Protocol):
    """Where rank 0's logs go (``logging.backends``: a list of these, each one getting every event).
    Only rank 0 builds loggers. Calls come in step order from the training loop; an exception from
    any call is warned once and that logger is left out for the rest of the launch (a tracking server
    that goes away never stops training), so a logger need not guard its own calls. The factory
    builds it without touching anything (it may refuse a missing package: see ``cgx.extras.require``);
    ``open`` starts it."""

    def open(self, run: LogRun) -> None:
        """Start (or, with ``run.start_step`` > 0, continue) logging the run."""

    def recipe(self, config: Mapping[str, Any]) -> None:
        """The resolved recipe (nested sections, as ``RUN/config.yaml``), once, when a run starts at step 0."""

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        """Scalars by tag: ``loss/<term>``, ``lr/<group>`` (``lr/generators``, ``lr/discriminators``, one per
        network group), ``perf/images_per_s``,
        ``perf/step_time_s``, ``perf/data_wait_s``, ``epoch``, ``data/skipped``; ``eval/...`` and
        ``eval_ema/...`` scores after an evaluation."""

    def image(self, step: int, tag: str, grid: np.ndarray) -> None:
        """An image grid, (H, W, 3) uint8 RGB, under its title ``tag`` (the method's, e.g.
        ``A->B->A (real, fake, reconstructed)``): a row per image batch, every ``train.image_every`` steps."""

    def event(self, step: int, name: str, fields: Mapping[str, Union[str, float]]) -> None:
        """One of ``EVENTS`` at ``step``, with its fields."""

    def close(self) -> None:
        """Flush and finish (the launch ends: the run may be resumed later)."""


__all__ = ["AdaptiveAugment", "AdversarialLoss", "Augment", "Buffer", "Components", "Discriminator", "DiscriminatorBatch", "EVENTS",
           "FeatureGenerator", "Generator", "LogRun", "Logger", "Method",
           "MethodStep", "MethodV1", "ReconstructionLoss", "ResizableBuffer", "Scores", "Segmenter", "StepResult", "Trainable"]
