"""The contract check for a training method: it trains for real, at tiny scale, in this process.

    from cgx.testing import check_method

    def test_my_method(tmp_path):
        check_method({"name": "mymethod", "weight": 2.0}, tmp_path, plugins=[my_module])
"""
from __future__ import annotations

import contextlib
import io
import shutil
import sys
import types
from pathlib import Path
from typing import Any, Mapping, Sequence, Union

import numpy as np
import torch
import yaml
from PIL import Image

from ..plugins import default_registry
from .failures import check
from .networks import fits

TINY = {
    "model": {"generator": {"name": "resnet", "ngf": 4, "n_blocks": 1},
              "discriminator": {"name": "patchgan", "ndf": 4, "n_layers": 2}},
    "buffer": {"name": "image_pool", "size": 4},
    "data": {"preprocess": "resize_and_crop", "load_size": 36, "crop_size": 32, "flip": True, "workers": 0},
    "logging": {"backends": ["jsonl"]},
    "train": {"steps": 4, "batch_size": 1, "precision": "fp32", "log_every": 2, "image_every": 2, "ckpt_every": 2,
              "keep": 5, "progress": False},
}
"""The tiny recipe the method trains with (32 px, networks of a few thousand parameters, 4 steps)."""

Plugin = Union[str, Path, types.ModuleType]


def check_method(method: Union[str, Mapping[str, Any]], workdir: Union[str, Path], *, plugins: Sequence[Plugin] = (),
                 recipe: Mapping[str, Any] | None = None) -> Path:
    """Train ``method`` (a name, or its recipe section ``{"name": ..., arguments}``) as a user would, from a
    tiny recipe on tiny data made under ``workdir``, and check what the engine promises every method:

    - it builds (its object fits ``cgx.plugins.types.Method``, or the first form ``MethodV1``) and trains 4
      steps with a checkpoint every 2, moving the weights of every network group it declares (any number);
    - exact resume: a run that resumes from the step-2 checkpoint ends, at step 4, with every tensor of
      the checkpoint (every group, optimizer and schedule, random generators, data position) and the
      step's own state (``state_dict()`` through ``weights_only`` and ``load_state_dict()``) equal;
    - translate through the run: every direction ``translators()`` returns turns images into images of
      the target domain's size.

    ``workdir``: a fresh folder (pytest's ``tmp_path``). ``plugins``: modules (objects, importable names or
    ``.py`` paths) that register the method, loaded as
    a recipe's ``plugins:`` loads them (an installed plugin needs none). ``recipe``: changes to the tiny
    recipe (deep-merged), e.g. a generator the method needs; where it gives a domain labels
    (``data: {a: {labels: {classes: 4}}}``) the tiny data has label maps (the demo's 4 classes). Returns the
    trained run folder."""
    from ..infer import load_generators
    from ..run import main as run_main
    from ..translate import translate_folder

    workdir = Path(workdir)
    taken = [name for name in ("data", "run", "resumed") if (workdir / name).exists()]
    if taken:
        raise ValueError(f"check_method: {workdir} already holds {', '.join(taken)}; give it a fresh folder (tmp_path)")
    section = {"name": method} if isinstance(method, str) else dict(method)
    specs = [_spec(p) for p in plugins]
    registry = default_registry()
    for spec in specs:
        registry.load_module(spec)
    built = registry.create("method", section["name"], **{k: v for k, v in section.items() if k != "name"})
    fits("method", built)
    paired = getattr(built, "paired", False) is True

    raw = _merge(TINY, {"method": section, "plugins": specs, "data": {"paired": paired}})
    raw = _merge(raw, dict(recipe or {}))
    labelled = any(isinstance(d, Mapping) and d.get("labels") is not None
                   for d in (raw["data"].get("a"), raw["data"].get("b")))  # the recipe's domains with label maps
    data = _tiny_data(workdir / "data", paired, labelled)
    raw = _merge(raw, {"data": {"root": str(data)}})
    runs = {}
    for name in ("run", "resumed"):
        runs[name] = workdir / name
        path = workdir / f"{name}.yaml"
        path.write_text(yaml.safe_dump(_merge(raw, {"train": {"run_dir": str(runs[name])}})))
        if name == "resumed":  # as if this run had crashed right after its step-2 checkpoint
            shutil.copytree(runs["run"] / "checkpoints" / "step_00000002", runs[name] / "checkpoints" / "step_00000002")
        errors = io.StringIO()
        with contextlib.redirect_stderr(_Tee(errors, sys.stderr)):
            code = run_main([str(path)])
        said = errors.getvalue().strip().splitlines()
        check(code == 0, f"training {section['name']} from {path} exited with {code}: {said[-1] if said else ''}")
    first = runs["run"] / "checkpoints"
    check((first / "step_00000004" / "train.pt").is_file(), f"no step-4 checkpoint in {first}")
    at2, at4 = _load(first / "step_00000002"), _load(first / "step_00000004")
    groups = at4["train"].get("groups")  # each network group the method declared, by name
    check(isinstance(groups, Mapping) and groups, f"no network group in {first / 'step_00000004'}")
    for group in groups:
        check(_differs(at2["train"]["groups"][group]["module"], groups[group]["module"]),
              f"network group {group!r}: its weights did not change from step 2 to step 4")
    resumed = _load(runs["resumed"] / "checkpoints" / "step_00000004")
    for part in ("train", "rank"):
        _same(at4[part], resumed[part], f"resumed run's step-4 {part} state")

    gens = load_generators(runs["run"], plugins=specs)
    check(gens.G is not None or gens.F is not None, "translators() returned no direction")
    for direction, net in (("AtoB", gens.G), ("BtoA", gens.F)):
        if net is None:
            continue
        src, out = workdir / f"inputs_{direction}", workdir / f"translated_{direction}"
        _write_images(src, channels=3, n=2)
        done = translate_folder(runs["run"], src, out, direction=direction, progress=False, plugins=specs)
        pngs = sorted(out.glob("*.png"))
        check(len(pngs) == 2, f"translate {direction} wrote {len(pngs)} images of 2 ({done})")
        for png in pngs:
            check(Image.open(png).size == (32, 32), f"translate {direction}: {png.name} is {Image.open(png).size}")
    return runs["run"]


class _Tee:
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, text: str) -> int:
        for s in self.streams:
            s.write(text)
        return len(text)

    def flush(self) -> None:
        for s in self.streams:
            s.flush()


def _spec(plugin: Plugin) -> str:
    if isinstance(plugin, types.ModuleType):
        file = getattr(plugin, "__file__", None)
        return str(Path(file).resolve()) if file else plugin.__name__
    return str(plugin)


def _tiny_data(root: Path, paired: bool, labels: bool = False) -> Path:
    from ..data.demo import generate, generate_paired

    if paired:
        return generate_paired(root, n_train=4, n_test=2, size=32)
    return generate(root, n_train=4, n_test=2, size=32, labels=labels)  # labels: the demo's 4 classes


def _write_images(folder: Path, channels: int, n: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (32, 32, channels), dtype=np.uint8)).save(folder / f"{i}.png")


def _load(ckpt: Path) -> dict:
    from ..errors import CheckpointError
    from ..untrusted import load_weights_file

    train = load_weights_file(ckpt / "train.pt", what="checkpoint file", error=CheckpointError)
    train.pop("config", None)  # (names the run folder, which differs)
    return {"train": train, "rank": load_weights_file(ckpt / "rank_00000.pt", what="checkpoint file",
                                                      error=CheckpointError)}


def _differs(a, b) -> bool:
    tensors_a, tensors_b = _tensors(a), _tensors(b)
    return any(not torch.equal(x, tensors_b[k]) for k, x in tensors_a.items() if k in tensors_b and x.is_floating_point())


def _tensors(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    if isinstance(obj, torch.Tensor):
        return {prefix: obj}
    if isinstance(obj, Mapping):
        return {k: v for key, value in obj.items() for k, v in _tensors(value, f"{prefix}.{key}").items()}
    if isinstance(obj, (list, tuple)):
        return {k: v for i, value in enumerate(obj) for k, v in _tensors(value, f"{prefix}[{i}]").items()}
    return {}


def _same(a, b, what: str, at: str = "") -> None:
    if isinstance(a, torch.Tensor):
        check(isinstance(b, torch.Tensor) and a.shape == b.shape and a.dtype == b.dtype and torch.equal(a, b),
              f"{what} differs at {at or 'the top'}: not resumed exactly")
    elif isinstance(a, Mapping):
        check(isinstance(b, Mapping) and set(a) == set(b), f"{what}: keys differ at {at or 'the top'}: "
              f"{sorted(map(str, set(a) ^ set(b if isinstance(b, Mapping) else {})))}")
        for key in a:
            _same(a[key], b[key], what, f"{at}.{key}")
    elif isinstance(a, (list, tuple)):
        check(isinstance(b, (list, tuple)) and len(a) == len(b), f"{what}: lengths differ at {at}")
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, what, f"{at}[{i}]")
    else:
        check(a == b, f"{what} differs at {at}: {a!r} != {b!r}")


def _merge(a: Mapping, b: Mapping) -> dict:
    out = dict(a)
    for k, v in b.items():
        same_plugin = isinstance(out.get(k), Mapping) and out[k].get("name", v.get("name")) == v.get("name") \
            if isinstance(v, Mapping) else False  # (a section naming another plugin replaces the section)
        out[k] = _merge(out[k], v) if same_plugin else v
    return out
