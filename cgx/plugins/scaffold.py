"""``cgx plugins new KIND NAME [DIR]``: a pip-installable plugin package to start from (cookiecutter's
idea, with no template engine): ``pyproject.toml`` declaring the ``cgx`` entry point, the plugin module,
a test calling the public contract checks (``cgx.testing``), a small recipe and a README.

    cgx plugins new method refiner          # writes ./cgx-refiner/ (any kind: cgx.plugins.KINDS)
    pip install -e cgx-refiner && pytest cgx-refiner

The templates are strings in this module (no package data). The folder is created fresh: an existing
path (even an empty folder or a link) is refused, so nothing of a user's is replaced."""
from __future__ import annotations

import os
import re
from pathlib import Path

from .. import __version__
from ..errors import UsageError
from . import templates
from .kinds import KINDS

NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")

PYPROJECT = '''[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A cgx {kind} plugin: {name}"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["cgx>={cgx_version}"]

# cgx loads every module named in the entry-point group "cgx" (the entry point's name is what
# CGX_LOAD_PLUGINS accepts).
[project.entry-points.cgx]
{name} = "{module}"

[tool.setuptools]
py-modules = ["{module}"]
'''

README = '''# {dist}

A cgx {kind} plugin: `{name}`.

```sh
pip install -e .                 # registers `{name}` with cgx (`cgx plugins show {name}`)
pytest                           # cgx's contract checks for {a_kind} (cgx.testing)
{demo}     # a small data set, or set data.root in recipe.yaml to yours
cgx train recipe.yaml            # or: torchrun --nproc_per_node=N -m cgx.run recipe.yaml
```

`{module}.py` holds the plugin; its factory's keyword arguments are what a recipe may set
(`{key}: {{name: {name}, ...}}`).
'''

METHOD = '''"""{name}: SimGAN's refiner (Shrivastava et al. 2017) as a cgx method, one direction A -> B: an
adversarial loss plus weight * |G(a) - a| (self-regularisation: A and B need the same channels), the
discriminator fed from a history of refined images."""
from typing import Mapping

import torch
from torch import nn

from cgx.plugins import (Components, DiscriminatorBatch, StepResult, Trainable, fp32, frozen, hookimpl,
                         score_real_and_fake)


class {cls}:
    def __init__(self, weight: float) -> None:
        self.weight = weight

    def groups(self, make: Components) -> dict:
        # Named network groups, built in this order; each is wrapped once with its own optimizer
        # (optim, and optim.<group> in the recipe). "generators" is what translate loads.
        return {{"generators": make.generator("A", "B"),      # the group is the one generator G
                "discriminators": make.discriminator("B")}}

    def build_step(self, groups: Mapping[str, Trainable], make: Components, autocast):
        return {cls}Step(groups["generators"], groups["discriminators"], make, autocast, self.weight)

    def translators(self, generators: nn.Module) -> dict:
        return {{"AtoB": generators}}


class {cls}Step:
    def __init__(self, G: Trainable, D: Trainable, make: Components, autocast, weight: float) -> None:
        self.G, self.D, self.autocast, self.weight = G, D, autocast, weight
        self.gan, self.l1, self.history = make.adversarial_loss(), make.reconstruction_loss(), make.buffer()

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> StepResult:
        with frozen(self.D), self.autocast():            # generator phase: D gets no gradient
            fake = self.G(a)                             # through the wrapper: trains, synchronised
            score = self.D.module(fake)                  # bare: a frozen pass needs no synchronisation
        losses = {{"G/gan": self.gan.generator_loss(score),    # losses outside autocast, in fp32
                  "G/self_reg": self.weight * self.l1(fp32(fake), a)}}
        self.G.backward(sum(losses.values()))
        self.G.step()
        old = self.history.query(fake.detach())          # what D sees: a history of refined images
        with self.autocast():                            # discriminator phase: real and fake in one call
            real_scores, fake_scores = score_real_and_fake(self.D, b, old)
        batch = DiscriminatorBatch(self.D.module, b, old, self.autocast)
        losses["D/B"] = self.gan.discriminator_loss(real_scores, fake_scores, batch)
        self.D.backward(losses["D/B"])
        self.D.step()
        return StepResult({{k: v.detach() for k, v in losses.items()}}, {{"A->B (real, refined)": [a, fake]}})

    def state_dict(self) -> dict:                        # saved with every checkpoint, per rank
        return {{"history": self.history.state_dict()}}

    def load_state_dict(self, state: dict) -> None:
        self.history.load_state_dict(state["history"])


def build_{name}(weight: float = 0.5) -> {cls}:
    """SimGAN's refiner: one direction, adversarial loss plus weight * |G(a) - a|."""
    if not weight >= 0:
        raise ValueError(f"weight must be >= 0, got {{weight}}")
    return {cls}(weight)


@hookimpl
def cgx_register_methods(register):
    register("{name}", build_{name})
'''

GENERATOR = '''"""{name}: a cgx generator (a small all-convolutional network: replace it with yours; the tests check
what cgx relies on)."""
from torch import nn

from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class {cls}(nn.Module):
    per_sample = True  # instance norm: a sample's output does not depend on the rest of its batch

    def __init__(self, in_channels: int, out_channels: int, width: int, n_blocks: int) -> None:
        super().__init__()

        def block(c_in, c_out):
            return [nn.Conv2d(c_in, c_out, 3, padding=1, padding_mode="reflect"), nn.InstanceNorm2d(c_out), nn.ReLU()]

        layers = block(in_channels, width)
        for _ in range(n_blocks):
            layers += block(width, width)
        layers += [nn.Conv2d(width, out_channels, 3, padding=1, padding_mode="reflect"), nn.Tanh()]  # [-1, 1]
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


def build_{name}(in_channels: int = 3, out_channels: int = 3, width: int = 32, n_blocks: int = 2) -> {cls}:
    """A small all-convolutional generator: width channels, n_blocks 3x3 blocks."""
    at_least(1, in_channels=in_channels, out_channels=out_channels, width=width)
    at_least(0, n_blocks=n_blocks)
    return {cls}(in_channels, out_channels, width, n_blocks)


@hookimpl
def cgx_register_generators(register):
    register("{name}", build_{name})
'''

DISCRIMINATOR = '''"""{name}: a cgx discriminator (a small PatchGAN-style network: replace it with yours; the tests check
what cgx relies on, its declared output_shapes included)."""
from torch import nn

from cgx.plugins import hookimpl
from cgx.plugins.args import at_least


class {cls}(nn.Module):
    def __init__(self, in_channels: int, width: int, n_layers: int) -> None:
        super().__init__()
        layers, channels = [], in_channels
        for i in range(n_layers):
            out = width * min(2**i, 8)
            layers += [nn.Conv2d(channels, out, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            channels = out
        layers.append(nn.Conv2d(channels, 1, 3, padding=1))  # raw scores: no sigmoid, the loss decides
        self.net = nn.Sequential(*layers)
        self.n_layers = n_layers
        self.min_size = 2**n_layers

    def output_shapes(self, height: int, width: int) -> list:
        """(channels, h, w) of each score map for a height x width input: each stride-2 conv halves."""
        return [(1, height >> self.n_layers, width >> self.n_layers)]

    def forward(self, x):
        return self.net(x)


def build_{name}(in_channels: int = 3, width: int = 64, n_layers: int = 3) -> {cls}:
    """A PatchGAN-style discriminator: n_layers stride-2 convs from width channels, one score map."""
    at_least(1, in_channels=in_channels, width=width, n_layers=n_layers)
    return {cls}(in_channels, width, n_layers)


@hookimpl
def cgx_register_discriminators(register):
    register("{name}", build_{name})
'''

TEST_HEAD = '''"""{name}'s tests: it registers, and keeps cgx's contract for {a_kind} (cgx.testing: the checks cgx
runs on its own built-ins)."""
import functools

import {module}
from cgx.plugins import Registry
from cgx.testing import {checks}


def test_registers(monkeypatch):
    monkeypatch.setenv("CGX_LOAD_PLUGINS", "")  # this module alone, whatever else is installed
    registry = Registry()
    registry.add_plugin({module}, source="test")
    assert registry.available("{kind}") == ["{name}"]
    registry.create("{kind}", "{name}")  # from its defaults, checked against the {kind} Protocol
'''

TESTS = {
    "method": '''

def test_keeps_the_method_contract(tmp_path):
    """Trains 4 tiny steps for real (seconds), resumes exactly from step 2, translates through the run."""
    check_method({{"name": "{name}"}}, tmp_path, plugins=[{module}])
''',
    "generator": '''

def test_keeps_the_generator_contract():
    check_generator(functools.partial({module}.build_{name}, width=8, n_blocks=1))
''',
    "discriminator": '''

def test_keeps_the_discriminator_contract():
    check_discriminator(functools.partial({module}.build_{name}, width=8, n_layers=2))


def test_trains_with_every_adversarial_loss():
    import cgx.plugins

    for loss in cgx.plugins.available("adversarial_loss"):
        check_adversarial_loss(lambda: cgx.plugins.create("adversarial_loss", loss),
                               discriminator=functools.partial({module}.build_{name}, width=8, n_layers=2))
''',
    "adversarial_loss": '''

def test_keeps_the_adversarial_loss_contract():
    check_adversarial_loss({module}.build_{name})
''',
    "reconstruction_loss": '''

def test_keeps_the_reconstruction_loss_contract():
    check_reconstruction_loss({module}.build_{name})
''',
    "buffer": '''

def test_keeps_the_buffer_contract():
    check_buffer(functools.partial({module}.build_{name}, size=3))
''',
    "logger": '''

def test_keeps_the_logger_contract(tmp_path):
    check_logger({module}.build_{name}, tmp_path)
''',
    "augment": '''

def test_keeps_the_augment_contract():
    check_augment({module}.build_{name})
''',
    "segmenter": '''

def test_keeps_the_segmenter_contract():
    check_segmenter(functools.partial({module}.build_{name}, in_channels=3, classes=3, width=8, n_layers=2), classes=3)
''',
}
CHECKS = {"method": "check_method", "generator": "check_generator",
          "discriminator": "check_adversarial_loss, check_discriminator", "adversarial_loss": "check_adversarial_loss",
          "reconstruction_loss": "check_reconstruction_loss", "buffer": "check_buffer", "logger": "check_logger",
          "augment": "check_augment", "segmenter": "check_segmenter"}

RECIPE_HEAD = '''# A small recipe with {name} (64 px, a few minutes on a CPU). `cgx demo-data data --size 64` writes the
# data it reads (or set data.root to yours); then: cgx train recipe.yaml
'''
RECIPES = {
    "method": '''method: {{name: {name}, weight: 0.5}}
model:
  generator: {{name: resnet, ngf: 16, n_blocks: 3}}
  discriminator: {{name: patchgan, ndf: 16, n_layers: 3}}
''',
    "generator": '''model:
  generator: {{name: {name}, width: 32, n_blocks: 2}}
  discriminator: {{name: patchgan, ndf: 16, n_layers: 3}}
''',
    "discriminator": '''model:
  generator: {{name: resnet, ngf: 16, n_blocks: 3}}
  discriminator: {{name: {name}, width: 16, n_layers: 3}}
''',
    "adversarial_loss": "loss: {{gan: {name}}}\n",
    "reconstruction_loss": "loss: {{cycle: {name}}}\n",
    "buffer": "buffer: {{name: {name}, size: 50}}\n",
    "logger": "logging: {{backends: [tensorboard, {name}]}}\n",
    "augment": "augment: {{name: {name}, fraction: 0.125}}\n",
    "segmenter": '''method:
  name: cyclegan
  semantic: {{weight: 1.0, network: {{name: {name}, width: 16, n_layers: 4}}, pretrain_steps: 100}}
''',
}
RECIPE_TAIL = '''data: {{root: data, load_size: 72, crop_size: 64}}
train: {{steps: 400, batch_size: 4, run_dir: runs/{name}}}
'''
RECIPE_TAILS = {  # a segmenter needs label maps: cgx demo-data --labels writes them (4 classes: the shapes)
    "segmenter": '''data:
  root: data
  load_size: 72
  crop_size: 64
  a: {{labels: {{classes: 4}}}}
  b: {{labels: {{classes: 4}}}}
train: {{steps: 400, batch_size: 4, run_dir: runs/{name}}}
''',
}
RECIPE_HEADS = {
    "segmenter": '''# A small recipe with {name} as CycleGAN's semantic-consistency segmenter (64 px, a few minutes on a CPU).
# `cgx demo-data --labels data --size 64` writes the data it reads, with label maps (or set data.root to yours,
# with trainA_labels/ beside trainA/); then: cgx train recipe.yaml
''',
}
MODULES = {"method": METHOD, "generator": GENERATOR, "discriminator": DISCRIMINATOR,
           "adversarial_loss": templates.ADVERSARIAL_LOSS, "reconstruction_loss": templates.RECONSTRUCTION_LOSS,
           "buffer": templates.BUFFER, "logger": templates.LOGGER, "augment": templates.AUGMENT,
           "segmenter": templates.SEGMENTER}
KEYS = {kind: KINDS[kind].recipe_keys[0] for kind in MODULES}
KINDS_WITH_TEMPLATES = tuple(MODULES)


def render(kind: str, name: str) -> dict[str, str]:
    """The package's files (relative path -> text) for a ``kind`` plugin named ``name``."""
    if kind not in MODULES:
        raise UsageError(f"cgx plugins new: unknown plugin kind {kind!r}; kinds: {', '.join(KINDS_WITH_TEMPLATES)}")
    if not NAME.fullmatch(name):
        raise UsageError(f"cgx plugins new: name {name!r} must be lower-case letters, digits and _, starting with a "
                         f"letter, at most 40 characters (it becomes the module cgx_NAME and the recipe's name)")
    fields = {"kind": kind, "a_kind": ("an " if kind[0] in "aeiou" else "a ") + kind, "name": name, "module": f"cgx_{name}", "dist": "cgx-" + name.replace("_", "-"),
              "cls": "".join(part.capitalize() for part in name.split("_")), "cgx_version": __version__,
              "key": KEYS[kind], "checks": CHECKS[kind],
              "demo": "cgx demo-data --labels data --size 64" if kind == "segmenter" else "cgx demo-data data --size 64"}
    return {
        "pyproject.toml": PYPROJECT.format(**fields),
        "README.md": README.format(**fields),
        f"{fields['module']}.py": MODULES[kind].format(**fields),
        f"tests/test_{fields['module']}.py": (TEST_HEAD + TESTS[kind]).format(**fields),
        "recipe.yaml": (RECIPE_HEADS.get(kind, RECIPE_HEAD) + RECIPES[kind]
                        + RECIPE_TAILS.get(kind, RECIPE_TAIL)).format(**fields),
    }


def default_folder(name: str) -> Path:
    return Path("cgx-" + name.replace("_", "-"))


def write(kind: str, name: str, folder: str | Path | None = None) -> tuple[Path, list[Path]]:
    """Write the package into ``folder`` (default ``./cgx-NAME``), which must not exist; returns it and
    the files written."""
    files = render(kind, name)
    folder = Path(folder) if folder is not None else default_folder(name)
    if os.path.lexists(folder):
        raise UsageError(f"cgx plugins new: {folder} already exists; name a folder that does not "
                         f"(cgx plugins new {kind} {name} NEW_FOLDER)")
    if not folder.parent.is_dir():
        raise UsageError(f"cgx plugins new: {folder.parent} is not a folder")
    folder.mkdir()
    written = []
    for rel, text in files.items():
        path = folder / rel
        path.parent.mkdir(exist_ok=True)
        with open(path, "x", encoding="utf-8") as f:  # "x": never over anything
            f.write(text)
        written.append(path)
    return folder, written
