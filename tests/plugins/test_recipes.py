"""Every recipe in recipes/ trains end to end: 2 steps in this process on the tiny demo data, with
its networks shrunk (same plugins, fewer channels and layers; SHRINK) so that it takes seconds.
A new recipe is tested by being added; a new plugin should add its small settings to SHRINK."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from cgx import run
from cgx.train.checkpoint import list_checkpoints

REPO = Path(__file__).resolve().parents[2]
RECIPES = sorted((REPO / "recipes").glob("*.yaml"))

# (section, plugin name) -> overrides that keep the plugin but make it tiny (32 px inputs)
SHRINK = {
    ("generator", "resnet"): {"ngf": 4, "n_blocks": 1},
    ("generator", "unet"): {"ngf": 4, "num_downs": 5},
    ("discriminator", "patchgan"): {"ndf": 4, "n_layers": 2},
    ("discriminator", "multiscale"): {"ndf": 4, "n_layers": 2, "num_scales": 2},
    ("discriminator", "pixelgan"): {"ndf": 4},
    ("discriminator", "timm"): {"backbone": "lcnet_050", "head_channels": 8},
    # CUT's NCE layers must lie in the shrunk (anti-aliased, 1-block) generator's encoder: modules 0..12
    ("method", "cut"): {"nce_layers": "[0,4,8,12]", "num_patches": 16},
    ("method", "fastcut"): {"nce_layers": "[0,4,8,12]", "num_patches": 16},
}
TINY_RUN = ["train.steps=2", "data.source=folder", "data.crop_size=32", "data.load_size=36", "data.workers=0",
            "train.progress=false", "train.image_every=0", "train.log_every=1"]


def recipe_overrides(recipe: Path) -> list[str]:
    raw = yaml.safe_load(recipe.read_text()) or {}
    out = []
    for section in ("generator", "discriminator", "method"):
        spec = raw.get(section) if section == "method" else (raw.get("model") or {}).get(section)
        name = spec if isinstance(spec, str) else (spec or {}).get("name")
        prefix = "method" if section == "method" else f"model.{section}"
        for key, value in SHRINK.get((section, name), {}).items():
            out.append(f"{prefix}.{key}={value}")
    if isinstance(raw.get("method"), dict) and raw["method"].get("semantic") is not None:
        out += SEMANTIC_SHRINK
    return out


SEMANTIC_SHRINK = ["method.semantic.network={name: unet, width: 4, depth: 2}", "method.semantic.pretrain_steps=1",
                   "method.semantic.init_from=null"]
"""A recipe with semantic consistency (method.semantic): a tiny segmenter, pretrained for 1 of the 2 steps."""


def labelled(recipe: Path) -> bool:
    """Whether the recipe declares label maps for a domain (it trains on the labelled demo data)."""
    data = (yaml.safe_load(recipe.read_text()) or {}).get("data") or {}
    return any((data.get(d) or {}).get("labels") is not None for d in ("a", "b"))


def single_process_ddp(recipe: Path) -> bool:
    raw = yaml.safe_load(recipe.read_text()) or {}
    return ((raw.get("distributed") or {}).get("strategy") or "ddp") == "ddp"


CASES = [pytest.param(r, "fp32", id=r.stem) for r in RECIPES]
CASES += [pytest.param(REPO / "recipes" / "wgangp.yaml", "bf16", id="wgangp-bf16")]  # the fp32 penalty in a bf16 run


def test_variant_recipes_exist():
    names = {r.stem for r in RECIPES}
    assert {"unet_256", "unet_128", "patchgan_sn_hinge", "multiscale", "pixelgan", "timm_disc", "wgangp",
            "vanilla"} <= names


@pytest.mark.parametrize("recipe, precision", CASES)
def test_recipe_trains_two_steps(recipe, precision, demo_data, paired_data, labelled_data, tmp_path, capsys):
    if not single_process_ddp(recipe):
        pytest.skip("not a DDP recipe: its strategy has its own tests")
    run_dir = tmp_path / "run"
    paired = ((yaml.safe_load(recipe.read_text()) or {}).get("data") or {}).get("paired", False)
    data = paired_data if paired else labelled_data if labelled(recipe) else demo_data
    argv = [str(recipe), f"data.root={data}", "eval.every=0", f"train.run_dir={run_dir}", f"train.precision={precision}",
            *TINY_RUN, *recipe_overrides(recipe)]
    code = run.main(argv)
    out = capsys.readouterr()
    assert code == 0, out.err
    assert "trained 2 steps" in out.out
    (ckpt,) = list_checkpoints(run_dir / "checkpoints")
    assert ckpt.name == "step_00000002"
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    raw = yaml.safe_load(recipe.read_text())
    for key in ("generator", "discriminator"):
        want = raw["model"][key]
        assert resolved["model"][key]["name"] == (want if isinstance(want, str) else want["name"])
    gan = raw["loss"]["gan"]
    assert resolved["loss"]["gan"]["name"] == (gan if isinstance(gan, str) else gan["name"])
