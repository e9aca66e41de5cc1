"""``cgx export RUN --format onnx|torchscript``: one generator as a standalone file for a
deployment runtime, with a JSON description beside it.

The exported network takes a float32 NCHW batch of images in [-1, 1] (as many channels as its source
domain has: ``data.a`` for AtoB; the JSON records channels and depth of input and output) whose height and width
are multiples of the network's stride (4 for the ResNet generator, 2**num_downs for the U-Net) and
at least its minimum size; batch size, height and width are dynamic. It returns the translated
batch, the same shape, in [-1, 1]. Every export is checked against PyTorch on two image sizes
(other than the one it was traced at) before it is renamed into place; an ONNX file is checked by
running it in onnxruntime. ONNX needs the optional packages: ``pip install -e '.[export]'``.
"""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from ..errors import ExportError, SetupError
from ..infer import load_generators
from .files import check_free, write_atomic

FORMATS = ("onnx", "torchscript")
SUFFIX = {"onnx": ".onnx", "torchscript": ".pt"}
MAX_DIFF = 1e-4
"""An export whose output differs from PyTorch's by more than this (max abs, fp32) is refused."""
OPSET = 18


@dataclass
class Exported:
    path: Path
    meta_path: Path
    meta: dict

    @property
    def check(self) -> dict:
        return self.meta["check"]


def sizes_for(net: nn.Module) -> tuple[int, list[tuple[int, int]]]:
    """The side traced at, and two other (height, width) sizes the export is checked at."""
    m = int(getattr(net, "size_multiple", 1))
    least = int(getattr(net, "min_size", m))
    # at least 2 strides: torch.export takes a dynamic size traced at 1 (here: 1 stride) for a constant
    side = m * max(2, -(-64 // m), -(-least // m))
    return side, [(side + m, side + m), (side + m, side + 2 * m)]


def export_generator(run: str | Path, fmt: str, *, direction: str = "AtoB", out: str | Path | None = None,
                     force: bool = False, plugins: Sequence[str] = (), weights: str = "auto") -> Exported:
    """Export the ``direction`` generator of ``run`` (a run or checkpoint folder, train.pt, or the
    authors' generator files) as ``fmt``; default file RUN/export/generator_AtoB.onnx (or .pt)."""
    if fmt not in FORMATS:
        raise ExportError(f"unknown export format {fmt!r}; accepted: authors, {', '.join(FORMATS)}")
    if fmt == "onnx":
        _require_onnx()
    gens = load_generators(run, "cpu", plugins=plugins, weights=weights)
    net = gens.net(direction).float().eval()
    base = Path(run) if Path(run).is_dir() else Path(run).parent
    path = Path(out) if out is not None else base / "export" / f"generator_{direction}{SUFFIX[fmt]}"
    meta_path = path.with_suffix(".json")
    check_free([path, meta_path], force)

    side, check_sizes = sizes_for(net)
    stride = int(getattr(net, "size_multiple", 1))
    spec_in, spec_out = (gens.config.data.a, gens.config.data.b)[:: 1 if direction == "AtoB" else -1]
    example = _images(2, side, side, seed=0, channels=spec_in.channels)
    checked: dict[str, float] = {}
    if fmt == "onnx":
        write_atomic(path, lambda tmp: checked.update(diff=_write_onnx(net, example, stride, tmp, check_sizes)))
        runtime = f"onnxruntime {_version('onnxruntime')} (CPUExecutionProvider)"
    else:
        write_atomic(path, lambda tmp: checked.update(diff=_write_torchscript(net, example, tmp, check_sizes)))
        runtime = f"torch.jit.load, torch {torch.__version__}"
    meta = {
        "format": fmt,
        "file": path.name,
        "direction": direction,
        "network": gens.config.model.generator.to_dict(),
        "source": str(gens.checkpoint),
        "step": gens.step,
        "input": {"name": "image", "layout": "NCHW", "dtype": "float32", **_channel_meta(spec_in),
                  "range": [-1.0, 1.0], "to_input": _to_input(spec_in)},
        "output": {"name": "translated", "layout": "NCHW", "dtype": "float32", **_channel_meta(spec_out),
                   "range": [-1.0, 1.0], **_from_output(spec_out)},
        "stride": stride,
        "min_size": int(getattr(net, "min_size", stride)),
        "dynamic": "batch, height and width; height and width must be multiples of stride and at least min_size "
                   "(pad, e.g. reflect, and crop back)",
        "check": {"runtime": runtime, "sizes": [list(s) for s in check_sizes],
                  "max_abs_diff": checked["diff"], "tolerance": MAX_DIFF},
    }
    if fmt == "onnx":
        meta["opset"] = OPSET
    write_atomic(meta_path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2) + "\n"))
    return Exported(path, meta_path, meta)


def _channel_meta(spec) -> dict:
    order = {1: "grey", 3: "RGB"}.get(spec.channels, f"bands 0..{spec.channels - 1}")
    return {"channels": spec.channels, "channel_order": order, "depth": spec.depth}


def _to_input(spec) -> str:
    return {8: "x / 127.5 - 1 for 8-bit samples", 16: "x / 32767.5 - 1 for 16-bit samples",
            "float": "2 x - 1 for float samples in 0..1"}[spec.depth]


def _from_output(spec) -> dict:
    if spec.depth == 8:
        return {"to_8bit": "round((y + 1) * 127.5)"}
    if spec.depth == 16:
        return {"to_16bit": "round((y + 1) * 32767.5)"}
    return {"to_float": "(y + 1) / 2"}


def _images(n: int, h: int, w: int, seed: int, channels: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, h, w, generator=g) * 2 - 1


def _compare(where: Path, run, net: nn.Module, sizes: list[tuple[int, int]], channels: int = 3) -> float:
    """Max abs difference between ``run(x)`` (the exported file) and ``net(x)`` over the sizes."""
    worst = 0.0
    for i, (h, w) in enumerate(sizes):
        x = _images(2, h, w, seed=1 + i, channels=channels)
        with torch.no_grad():
            ref = net(x)
        got = run(x)
        if tuple(got.shape) != tuple(ref.shape):
            raise ExportError(f"{where}: output shape {tuple(got.shape)} at input {h}x{w}, PyTorch gives {tuple(ref.shape)}")
        worst = max(worst, (got - ref).abs().max().item())
    if not worst <= MAX_DIFF:
        raise ExportError(f"{where}: the export differs from PyTorch by {worst:.3g} (max abs) at sizes {sizes}, "
                          f"more than {MAX_DIFF}; nothing was written")
    return worst


def _write_onnx(net: nn.Module, example: torch.Tensor, stride: int, tmp: Path, sizes) -> float:
    import onnxruntime as ort

    least = -(-int(getattr(net, "min_size", stride)) // stride)
    dim = torch.export.Dim
    dynamic = {0: dim("batch", min=1, max=4096), 2: stride * dim("h", min=least, max=65536 // stride),
               3: stride * dim("w", min=least, max=65536 // stride)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(net, (example,), str(tmp), dynamo=True, opset_version=OPSET, input_names=["image"],
                              output_names=["translated"], dynamic_shapes=(dynamic,), external_data=False,
                              verbose=False)
    except Exception as e:
        raise ExportError(f"torch.onnx.export of {type(net).__name__} failed: {str(e).splitlines()[0]}") from e
    session = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"])
    return _compare(tmp, lambda x: torch.from_numpy(session.run(None, {"image": x.numpy()})[0]), net, sizes,
                    example.shape[1])


def _write_torchscript(net: nn.Module, example: torch.Tensor, tmp: Path, sizes) -> float:
    with warnings.catch_warnings():
        # torch.jit is deprecated upstream (FutureWarning) but still the format many runtimes load;
        # the U-Net's input-size check is a Python branch the trace records as passed (TracerWarning).
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, example, check_trace=False)
        torch.jit.save(traced, str(tmp))
        loaded = torch.jit.load(str(tmp))
    return _compare(tmp, lambda x: loaded(x).detach(), net, sizes, example.shape[1])


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _require_onnx() -> None:
    from ..extras import install_hint

    missing = []
    for name in ("onnx", "onnxruntime", "onnxscript"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise SetupError(f"cgx export --format onnx needs the package(s) {', '.join(missing)}: "
                         f"{install_hint('export')} (or pip install onnx onnxruntime onnxscript)")
