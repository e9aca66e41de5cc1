"""cgx export --format onnx|torchscript: standalone generators that match PyTorch at other sizes."""
from __future__ import annotations

import json
import re
import sys

import pytest
import torch
import yaml
from conftest import TINY_RECIPE, merge

from cgx.cli import main as cli
from cgx.errors import SetupError
from cgx.infer import load_generators
from cgx.interop.deploy import export_generator
from cgx.run import main as run_main


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory, demo_data):
    """A tiny run trained for 2 steps."""
    tmp = tmp_path_factory.mktemp("deploy")
    recipe = merge(TINY_RECIPE, {"data": {"root": str(demo_data)},
                                 "train": {"run_dir": str(tmp / "run"), "steps": 2, "ckpt_every": 2}})
    (tmp / "tiny.yaml").write_text(yaml.safe_dump(recipe))
    assert run_main([str(tmp / "tiny.yaml")]) == 0
    return tmp / "run"


def images(h: int, w: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(3, 3, h, w, generator=g) * 2 - 1


SIZES = [(32, 32), (40, 56)]  # multiples of the ResNet's stride 4, neither the size the export was traced at (64)


@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_onnx_export_matches_pytorch_in_onnxruntime(trained_run, direction, capsys):
    ort = pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
    assert cli(["export", str(trained_run), "--format", "onnx", "--direction", direction]) == 0
    said = capsys.readouterr().out
    assert "checked with onnxruntime" in said and "max abs diff" in said
    path = trained_run / "export" / f"generator_{direction}.onnx"
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["input"]["range"] == [-1.0, 1.0] and meta["input"]["channel_order"] == "RGB"
    assert meta["stride"] == 4 and meta["direction"] == direction and meta["check"]["max_abs_diff"] <= 1e-4

    net = load_generators(trained_run).net(direction)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for i, (h, w) in enumerate(SIZES):
        x = images(h, w, seed=10 + i)
        with torch.no_grad():
            ref = net(x).numpy()
        got = session.run(None, {"image": x.numpy()})[0]
        diff = abs(got - ref).max()
        print(f"onnx {direction} {h}x{w}: max abs diff {diff:.3g}")
        assert got.shape == ref.shape and diff <= 1e-4


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("direction", ["AtoB", "BtoA"])
def test_torchscript_export_matches_pytorch(trained_run, direction, tmp_path):
    out = tmp_path / f"g_{direction}.pt"
    e = export_generator(trained_run, "torchscript", direction=direction, out=out)
    assert e.path == out and out.is_file() and json.loads(out.with_suffix(".json").read_text())["stride"] == 4
    net = load_generators(trained_run).net(direction)
    loaded = torch.jit.load(str(out))
    for i, (h, w) in enumerate(SIZES):
        x = images(h, w, seed=20 + i)
        with torch.no_grad():
            diff = (loaded(x) - net(x)).abs().max().item()
        print(f"torchscript {direction} {h}x{w}: max abs diff {diff:.3g}")
        assert diff <= 1e-5


def test_export_does_not_replace_files_without_force(trained_run, tmp_path, capsys):
    out = tmp_path / "g.pt"
    out.write_bytes(b"precious")
    assert cli(["export", str(trained_run), "--format", "torchscript", "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err and out.read_bytes() == b"precious"


def test_onnx_export_without_the_extra_is_a_clear_error(trained_run, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import onnxruntime now raises ImportError
    from cgx.extras import install_hint  # the checkout's: pip install -e '.[export]' (tests/package checks both)

    with pytest.raises(SetupError, match=r"needs the package\(s\) onnxruntime: " + re.escape(install_hint("export"))):
        export_generator(trained_run, "onnx", out=tmp_path / "g.onnx")
    assert not (tmp_path / "g.onnx").exists()


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:FutureWarning")
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_a_unet_from_an_authors_file_exports_with_its_stride(fmt, tmp_path):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason="the export extra is not installed (pip install -e '.[export]')")
    from cgx import plugins
    from cgx.config import ComponentConfig
    from cgx.interop import authors

    torch.manual_seed(0)
    args = {"ngf": 2, "num_downs": 5}
    net = plugins.create("generator", "unet", **args).eval()
    torch.save(authors.to_authors(ComponentConfig("unet", args), net.state_dict(), "t"), tmp_path / "latest_net_G.pth")
    e = export_generator(tmp_path / "latest_net_G.pth", fmt, out=tmp_path / f"unet.{fmt}")
    assert e.meta["stride"] == 32 and e.check["sizes"] == [[96, 96], [96, 128]]
    assert e.check["max_abs_diff"] <= 1e-4
    x = images(64, 96, seed=3)
    if fmt == "onnx":
        import onnxruntime as ort

        got = torch.from_numpy(ort.InferenceSession(str(e.path)).run(None, {"image": x.numpy()})[0])
    else:
        got = torch.jit.load(str(e.path))(x)
    with torch.no_grad():
        assert (got - net(x)).abs().max().item() <= 1e-4
