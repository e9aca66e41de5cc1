"""Shared fixtures: tiny demo data and tiny recipes that train in seconds on CPU."""
from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

REPO = Path(__file__).resolve().parents[1]

# Tiny networks: ~10k parameters, 32 px.
TINY_RECIPE = {
    "model": {
        "generator": {"name": "resnet", "ngf": 4, "n_blocks": 1},
        "discriminator": {"name": "patchgan", "ndf": 4, "n_layers": 2},
    },
    "buffer": {"name": "image_pool", "size": 4},
    "data": {"preprocess": "resize_and_crop", "load_size": 36, "crop_size": 32, "flip": True, "workers": 0},
    "train": {"steps": 6, "batch_size": 1, "precision": "fp32", "log_every": 2, "image_every": 3, "ckpt_every": 3, "keep": 5,
              "progress": False},
}


SLOW_FIXTURES = {"make_recipe", "tiny_run", "trained", "trained_run", "weights", "use_weights", "grey16_data",
                 "ddp_reference", "authors_folder"}
"""A test that uses one of these trains a run or loads the Inception network: seconds, not milliseconds."""
SLOW_MODULES = {"test_recipes.py", "test_deploy.py", "test_import.py", "test_image_specs.py", "test_stale_index.py",
                "test_timm_disc.py", "test_fast_paths.py", "test_hostile_shards.py", "test_eval_channels.py",
                "test_authors.py", "test_activation_checkpointing.py", "test_tiling.py", "test_variants.py"}
"""Test modules whose tests train, export or read large files: slow as a whole."""
HEAVY_VARIANTS = ("timm", "multiscale", "wgangp")
"""Parametrized cases with a real backbone, several discriminators, or a gradient penalty's extra passes."""


def pytest_collection_modifyitems(config, items):
    """``slow``: every test that trains or evaluates for real (by the fixtures it uses, or marked so
    itself). ``make test-fast`` leaves out ``slow`` and ``multiprocess`` and runs in under a minute."""
    for item in items:
        if (SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.path.name in SLOW_MODULES
                or any(heavy in item.name for heavy in HEAVY_VARIANTS)):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _a_test_that_starts_processes_is_marked(request, monkeypatch):
    """``make test-fast`` runs ``-m "not multiprocess"``: a test that starts a process (torchrun, cgx
    as a subprocess, pip, SLURM) without ``@pytest.mark.multiprocess`` fails here, naming itself, so
    the fast lane cannot slowly fill up with them."""
    if request.node.get_closest_marker("multiprocess") is not None:
        return
    original = subprocess.Popen.__init__

    def refuse(self, args, *rest, **kwargs):
        shown = args if isinstance(args, str) else " ".join(map(str, args))
        if "torch._inductor" in shown or "compile_worker" in shown or shown.startswith("fc-list"):
            # torch.compile's own helpers; matplotlib's font scan (where fontconfig is installed: chromium)
            return original(self, args, *rest, **kwargs)
        raise AssertionError(f"{request.node.nodeid} starts a process ({shown[:120]}): mark it "
                             f"@pytest.mark.multiprocess (make test-fast skips those)")

    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Path:
    """8 train and 2 test images per domain, 32 px (the built-in demo generator)."""
    from cgx.data.demo import generate

    return generate(tmp_path_factory.mktemp("demo") / "data", n_train=8, n_test=2, size=32)


@pytest.fixture(scope="session")
def labelled_data(tmp_path_factory) -> Path:
    """demo_data's images with their label maps ({split}A_labels/ ...: 4 classes, cgx demo-data --labels)."""
    from cgx.data.demo import generate

    return generate(tmp_path_factory.mktemp("demo_labels") / "data", n_train=8, n_test=2, size=32, labels=True)


@pytest.fixture
def make_recipe(tmp_path, demo_data):
    """Write a tiny recipe (TINY_RECIPE deep-merged with ``changes``) and return its path."""

    def make(changes: dict | None = None, name: str = "recipe.yaml") -> Path:
        recipe = merge(TINY_RECIPE, {"data": {"root": str(demo_data)}, "train": {"run_dir": str(tmp_path / "run")}})
        recipe = merge(recipe, changes or {})
        path = tmp_path / name
        path.write_text(yaml.safe_dump(recipe))
        return path

    return make


def merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def torchrun(nproc: int, *args: str, timeout: int = 240) -> subprocess.CompletedProcess:
    """Launch ``torchrun --standalone --nproc_per_node=nproc -m cgx.run *args`` for real."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
           "-m", "cgx.run", *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def assert_clean_exit(proc: subprocess.CompletedProcess) -> None:
    """A torchrun run succeeded, and no rank aborted at exit (the gloo tear-down crash)."""
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-5000:]
    assert "terminate called" not in proc.stderr


def restart_from(src_run: Path, dst_run: Path, step: int, recipe: Path, nproc: int = 2) -> subprocess.CompletedProcess:
    """Copy ``src_run``'s step-``step`` checkpoint into ``dst_run`` (as if that run had crashed right
    after it) and run ``recipe`` (whose run_dir is ``dst_run``) under torchrun: it must resume."""
    name = f"checkpoints/step_{step:08d}"
    shutil.copytree(Path(src_run) / name, Path(dst_run) / name)
    proc = torchrun(nproc, str(recipe))
    assert_clean_exit(proc)
    assert "resumed from" in proc.stdout + proc.stderr
    return proc


def load_weights(run_dir: Path, step: int | None = None) -> dict:
    """Every network group's weights of a run's newest (or given) checkpoint (G.*, D.*, <group>.*)."""
    from cgx.train.checkpoint import list_checkpoints

    ckpts = list_checkpoints(Path(run_dir) / "checkpoints")
    path = ckpts[-1] if step is None else next(p for p in ckpts if p.name == f"step_{step:08d}")
    state = torch.load(path / "train.pt", weights_only=True)
    prefix = {"generators": "G", "discriminators": "D"}  # any further group: by its own name
    return {f"{prefix.get(group, group)}.{k}": v for group, part in state["groups"].items()
            for k, v in part["module"].items()}


def assert_same_weights(a: dict, b: dict, atol: float = 0.0) -> None:
    assert a.keys() == b.keys()
    worst = max(((k, (a[k].float() - b[k].float()).abs().max().item()) for k in a), key=lambda kv: kv[1])
    assert worst[1] <= atol, f"weights differ: {worst[0]} by {worst[1]}"


def assert_same_run_state(run_a: Path, run_b: Path, step: int, ranks: int = 1) -> None:
    """Two runs' checkpoints at ``step`` hold the same weights, lr schedules and, per rank, image pools."""
    ckpt = f"checkpoints/step_{step:08d}"
    assert_same_weights(load_weights(run_a, step), load_weights(run_b, step))
    a = torch.load(Path(run_a) / ckpt / "train.pt", weights_only=True)
    b = torch.load(Path(run_b) / ckpt / "train.pt", weights_only=True)
    assert a["schedules"] == b["schedules"]
    for rank in range(ranks):
        a = torch.load(Path(run_a) / ckpt / f"rank_{rank:05d}.pt", weights_only=True)
        b = torch.load(Path(run_b) / ckpt / f"rank_{rank:05d}.pt", weights_only=True)
        for d in "AB":
            assert torch.equal(a["method"]["buffers"][d]["images"], b["method"]["buffers"][d]["images"]), f"rank {rank} pool {d}"


@pytest.fixture(scope="session")
def demo_shards(demo_data, tmp_path_factory) -> Path:
    """demo_data as WebDataset shards (`cgx shards`, 3 samples a shard: trainA-{000000..000002}.tar, 3+3+2)."""
    from cgx.data.shard_writer import write_shards

    out = tmp_path_factory.mktemp("demo_shards")
    write_shards(demo_data, out, max_count=3, workers=1, progress=False)
    return out


def norm_cancelled_biases(net: torch.nn.Module) -> set[str]:
    """Biases of convolutions followed directly by an instance norm without affine parameters: the
    norm subtracts the mean, so their true gradient is exactly 0 and Adam moves them by float noise
    (different in two correct implementations). They do not change what the network computes; the
    reference-equality tests judge them by the networks' outputs."""
    out = set()
    for prefix, module in net.named_modules():
        if isinstance(module, torch.nn.Sequential):
            layers = list(module.named_children())
            for (name, layer), (_, following) in zip(layers, layers[1:]):
                if (isinstance(layer, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)) and layer.bias is not None
                        and isinstance(following, torch.nn.InstanceNorm2d) and not following.affine):
                    out.add(f"{prefix}.{name}.bias".lstrip("."))
    return out


def float64_error(net: torch.nn.Module, x: torch.Tensor, channels_last: bool) -> float:
    """Worst gradient error of an fp32 backward against float64: relative to each weight's gradient,
    and for biases relative to the largest gradient (the bias of a conv before instance norm has a
    true gradient of exactly 0: only its absolute noise can be judged)."""
    def grads(dtype, cl):
        n, inp = copy.deepcopy(net).to(dtype), x.to(dtype)
        if cl:
            n, inp = n.to(memory_format=torch.channels_last), inp.contiguous(memory_format=torch.channels_last)
        out = n(inp)
        (out * torch.linspace(-1, 1, out.numel(), dtype=dtype).reshape(out.shape)).sum().backward()
        return {k: p.grad.double() for k, p in n.named_parameters()}

    ref, got = grads(torch.float64, False), grads(torch.float32, channels_last)
    scale = max(r.norm().item() for r in ref.values())
    return max((got[k] - ref[k]).norm().item() / (ref[k].norm().item() if k.endswith("weight") else scale)
               for k in ref)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, demo_data) -> Path:
    """A run folder with a 2-step tiny checkpoint (for translate)."""
    from cgx.run import main as run_main

    tmp = tmp_path_factory.mktemp("faults_run")
    recipe = tmp / "r.yaml"
    recipe.write_text(yaml.safe_dump(merge(TINY_RECIPE, {
        "data": {"root": str(demo_data)}, "train": {"run_dir": str(tmp / "run"), "steps": 2, "ckpt_every": 2}})))
    assert run_main([str(recipe)]) == 0
    return tmp / "run"


# Tiny pix2pix on paired 32 px data: U-Net of 5 levels (32 px), batch norm, dropout; conditional PatchGAN.
PIX2PIX_RECIPE = {
    "method": {"name": "pix2pix", "direction": "AtoB"},
    "model": {"generator": {"name": "unet", "ngf": 4, "num_downs": 5, "norm": "batch", "dropout": True},
              "discriminator": {"name": "patchgan", "ndf": 4, "n_layers": 2, "norm": "batch"}},
    "loss": {"gan": "vanilla"},
    "data": {"paired": True},
}


@pytest.fixture(scope="session")
def paired_data(tmp_path_factory) -> Path:
    """8 train and 3 test aligned pairs (A | B, 64x32: `cgx demo-data --paired` at 32 px)."""
    from cgx.data.demo import generate_paired

    return generate_paired(tmp_path_factory.mktemp("paired") / "data", n_train=8, n_test=3, size=32)


@pytest.fixture
def make_paired_recipe(make_recipe, paired_data):
    """A tiny pix2pix recipe on paired_data (``make_recipe`` with PIX2PIX_RECIPE), merged with ``changes``."""

    def make(changes: dict | None = None, name: str = "recipe.yaml") -> Path:
        path = make_recipe(merge(merge(PIX2PIX_RECIPE, {"data": {"root": str(paired_data)}}), changes or {}), name)
        recipe = yaml.safe_load(path.read_text())
        recipe["model"] = merge(PIX2PIX_RECIPE["model"], (changes or {}).get("model", {}))  # not the resnet's args
        path.write_text(yaml.safe_dump(recipe))
        return path

    return make
