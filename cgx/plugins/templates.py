"""The ``cgx plugins new`` templates of the kinds that are not networks or methods (``cgx.plugins.scaffold``
formats them: ``{name}``, ``{cls}``; doubled braces are literal)."""

ADVERSARIAL_LOSS = '''"""{name}: a cgx adversarial loss (least squares with its targets as arguments: replace it with yours;
the tests call it as the methods do, in fp32 and under bf16 autocast)."""
import torch
import torch.nn.functional as nnf

from cgx.plugins import DiscriminatorBatch, Scores, fp32, hookimpl, mean_over


class {cls}:
    def __init__(self, real: float, fake: float) -> None:
        self.real, self.fake = real, fake

    def _to(self, scores: Scores, target: float) -> torch.Tensor:
        # scores may be bf16 (autocast) and a list (a multi-output discriminator): fp32, averaged over outputs
        return mean_over(fp32(scores), lambda s: nnf.mse_loss(s, torch.full_like(s, target)))

    def generator_loss(self, fake_scores: Scores) -> torch.Tensor:
        return self._to(fake_scores, self.real)

    def discriminator_loss(self, real_scores: Scores, fake_scores: Scores, batch: DiscriminatorBatch) -> torch.Tensor:
        return 0.5 * (self._to(real_scores, self.real) + self._to(fake_scores, self.fake))


def build_{name}(real: float = 1.0, fake: float = 0.0) -> {cls}:
    """Least squares towards the targets real and fake."""
    if real == fake:
        raise ValueError(f"real and fake must differ, got {{real}} for both")
    return {cls}(real, fake)


@hookimpl
def cgx_register_adversarial_losses(register):
    register("{name}", build_{name})
'''

RECONSTRUCTION_LOSS = '''"""{name}: a cgx reconstruction loss for the cycle and identity terms (Charbonnier, a smooth L1:
replace it with yours; the tests check what cgx relies on)."""
import torch

from cgx.plugins import hookimpl


class {cls}:
    def __init__(self, eps: float) -> None:
        self.eps = eps

    def __call__(self, output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        diff = output.float() - target.float()  # fp32 whatever the inputs
        return torch.sqrt(diff * diff + self.eps**2).mean()


def build_{name}(eps: float = 1e-3) -> {cls}:
    """Charbonnier distance sqrt((x - y)^2 + eps^2), averaged."""
    if not eps > 0:
        raise ValueError(f"eps must be > 0, got {{eps}}")
    return {cls}(eps)


@hookimpl
def cgx_register_reconstruction_losses(register):
    register("{name}", build_{name})
'''

BUFFER = '''"""{name}: a cgx image buffer (a reservoir of past fakes, each query answered about half from it:
replace it with yours; the tests check that a buffer loaded from a checkpoint answers exactly as the
first)."""
import torch

from cgx.plugins import hookimpl


class {cls}:
    def __init__(self, size: int) -> None:
        self.size, self.seen, self.images = size, 0, None

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = images.clone()
        for i, image in enumerate(images.detach()):
            self.seen += 1
            if self.images is None:
                self.images = image.new_zeros((self.size, *image.shape))
            held = min(self.seen - 1, self.size)
            if held and torch.rand(()) < 0.5:  # torch's global generator: saved and restored with every run
                out[i] = self.images[int(torch.randint(0, held, ()))]
            slot = self.seen - 1 if self.seen <= self.size else int(torch.randint(0, self.seen, ()))
            if slot < self.size:  # reservoir sampling: every fake seen is held with equal chance
                self.images[slot] = image
        return out

    def state_dict(self) -> dict:  # tensors and numbers: a checkpoint loads it with weights_only=True
        return {{"seen": self.seen, **({{"images": self.images}} if self.images is not None else {{}})}}

    def load_state_dict(self, state: dict) -> None:
        self.seen, self.images = int(state["seen"]), state.get("images")


def build_{name}(size: int = 50) -> {cls}:
    """A reservoir of size past fakes; each query swaps about half of the batch for held ones."""
    if size < 1:
        raise ValueError(f"size must be >= 1, got {{size}}")
    return {cls}(size)


@hookimpl
def cgx_register_buffers(register):
    register("{name}", build_{name})
'''

LOGGER = '''"""{name}: a cgx logger (scalars as CSV rows in RUN/logs/{name}/scalars.csv: replace it with yours; the
tests run a launch and a resumed one as the engine does)."""
import csv

from cgx.plugins import LogRun, hookimpl


class {cls}:
    def open(self, run: LogRun) -> None:
        folder = run.folder.logger_dir("{name}")  # a logger from outside cgx writes only here
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / "scalars.csv"
        rows = []
        if run.start_step > 0 and self.path.is_file():  # resumed: the steps after start_step come again
            with open(self.path, newline="") as f:
                rows = [r for r in csv.reader(f) if r and int(r[0]) <= run.start_step]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows(rows)
        self.file = open(self.path, "a", newline="")
        self.rows = csv.writer(self.file)

    def recipe(self, config) -> None:
        pass

    def scalars(self, step: int, values) -> None:
        self.rows.writerows([step, tag, value] for tag, value in values.items())

    def image(self, step: int, tag: str, grid) -> None:
        pass

    def event(self, step: int, name: str, fields) -> None:
        pass

    def close(self) -> None:
        self.file.close()


def build_{name}() -> {cls}:
    """Scalars as CSV rows (step, tag, value) in RUN/logs/{name}/scalars.csv."""
    return {cls}()  # builds without touching anything: open() starts it


@hookimpl
def cgx_register_loggers(register):
    register("{name}", build_{name})
'''

AUGMENT = '''"""{name}: a cgx discriminator augmentation (each image shifted by up to ``fraction`` of its size, the
gap filled with zeros, as DiffAugment's translation: replace it with yours). The engine applies it to every
image a discriminator sees, reals and fakes alike, in both phases; it stays differentiable (the generator
learns through it) and draws from torch's generator only (a resumed run draws the same)."""
import torch
import torch.nn.functional as F

from cgx.plugins import hookimpl


class {cls}:
    def __init__(self, fraction: float) -> None:
        self.fraction = fraction

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        n, _, h, w = images.shape
        dy, dx = int(h * self.fraction + 0.5), int(w * self.fraction + 0.5)
        if not (dy or dx):
            return images
        # one draw per sample, on the images' device: a sample's shift does not depend on the others
        sy = torch.randint(-dy, dy + 1, (n,), device=images.device).tolist()
        sx = torch.randint(-dx, dx + 1, (n,), device=images.device).tolist()
        padded = F.pad(images, (dx, dx, dy, dy))
        return torch.stack([padded[i, :, dy - sy[i]:dy - sy[i] + h, dx - sx[i]:dx - sx[i] + w] for i in range(n)])


def build_{name}(fraction: float = 0.125) -> {cls}:
    """Shift each image by up to fraction x its height and width (0.125: DiffAugment's)."""
    if not 0 <= fraction < 0.5:
        raise ValueError(f"fraction must be in [0, 0.5), got {{fraction}}")
    return {cls}(fraction)


@hookimpl
def cgx_register_augments(register):
    register("{name}", build_{name})
'''

SEGMENTER = '''"""{name}: a cgx segmenter (a small fully convolutional network of dilated 3x3 convolutions, instance
norm and ReLU, then a 1x1 convolution to class logits at the input's size: replace it with yours). The
semantic consistency term (``method.semantic.network``) trains it on labelled real images and runs it frozen
on generated ones; ``cgx eval --segmenter`` can score with it."""
import torch
from torch import nn

from cgx.plugins import hookimpl


class {cls}(nn.Module):
    def __init__(self, in_channels: int, classes: int, width: int, n_layers: int) -> None:
        super().__init__()
        self.classes = classes  # the engine reads it
        layers, channels = [], in_channels
        for i in range(n_layers):  # dilation 1, 2, 4, ...: the view grows without losing resolution
            d = 2 ** i
            layers += [nn.Conv2d(channels, width, 3, padding=d, dilation=d, padding_mode="reflect"),
                       nn.InstanceNorm2d(width, affine=True), nn.ReLU(inplace=True)]
            channels = width
        layers.append(nn.Conv2d(channels, classes, 1))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)  # raw logits (N, classes, H, W): no softmax


def build_{name}(in_channels: int = 3, classes: int = 2, width: int = 32, n_layers: int = 4) -> {cls}:
    """in_channels and classes come from the data (data.a.channels, data.a.labels.classes)."""
    if width < 1 or n_layers < 1:
        raise ValueError(f"width and n_layers must be >= 1, got {{width}}, {{n_layers}}")
    return {cls}(in_channels, classes, width, n_layers)


@hookimpl
def cgx_register_segmenters(register):
    register("{name}", build_{name})
'''
