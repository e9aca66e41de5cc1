"""CycleGAN and CUT with semantic consistency (``method.semantic``) through the public method check: the
segmenter group trains, checkpoints and resumes exactly beside the others; ``pretrain_steps`` holds the
generators and discriminators back; off, the methods are the plain ones; ``cgx eval --segmenter run`` reads the
run's segmenter group."""
from __future__ import annotations

import pytest
import torch

import cgx.plugins
from cgx.testing import check_method

pytestmark = pytest.mark.slow  # trains for real

LABELLED = {"data": {"a": {"labels": {"classes": 4}}, "b": {"labels": {"classes": 4}}}}
TINY_SEG = {"name": "unet", "width": 4, "depth": 2}
CUT_TINY = {"model": {"generator": {"name": "resnet", "ngf": 4, "n_blocks": 1}}}


def shared(ckpt):
    return torch.load(ckpt / "train.pt", weights_only=True)


def test_semantic_cyclegan_pretrains_trains_resumes_and_its_segmenter_scores(tmp_path):
    """Pretraining for 2 of the 4 steps: the resumed run starts right where the generators begin."""
    run = check_method({"name": "cyclegan", "semantic": {"weight": 2.0, "network": TINY_SEG, "pretrain_steps": 2}},
                       tmp_path, recipe={**LABELLED, "optim": {"segmenter": {"lr": 1e-3}}})
    at2, at4 = shared(run / "checkpoints" / "step_00000002"), shared(run / "checkpoints" / "step_00000004")
    assert list(at4["groups"]) == ["generators", "discriminators", "segmenter"]
    assert at4["groups"]["segmenter"]["optimizer"]["param_groups"][0]["initial_lr"] == pytest.approx(1e-3)
    for group in ("generators", "discriminators"):
        assert at2["groups"][group]["optimizer"]["state"] == {}, group  # no update in the first 2 steps
        assert at4["groups"][group]["optimizer"]["state"], group
    assert at2["groups"]["segmenter"]["optimizer"]["state"]
    lines = (run / "log.jsonl").read_text().splitlines()
    at_step = {n: next(line for line in lines if f'"step": {n},' in line and "loss/" in line) for n in (2, 4)}
    assert "loss/S/A" in at_step[2] and "loss/G/" not in at_step[2] and "loss/D/" not in at_step[2]
    for tag in ("G/semantic_AtoB", "G/semantic_BtoA", "G/cycle_A", "D/A", "S/A", "S/B"):
        assert f"loss/{tag}" in at_step[4], tag

    from cgx.eval.segmenters import build_segmenter
    from cgx.infer import load_generators

    seg = build_segmenter("run", torch.device("cpu"), context=load_generators(run))
    classes = seg(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert classes.shape == (2, 32, 32) and seg.classes == 4 and classes.max() < 4


def test_semantic_cut_trains_and_resumes_with_flipped_labels(tmp_path):
    run = check_method({"name": "fastcut", "nce_layers": [0, 2, 4], "semantic": {"network": TINY_SEG}}, tmp_path,
                       recipe={**LABELLED, **CUT_TINY})
    state = shared(run / "checkpoints" / "step_00000004")
    assert list(state["groups"]) == ["generators", "discriminators", "segmenter"]
    log = (run / "log.jsonl").read_text()
    assert "loss/G/semantic_AtoB" in log and "G/semantic_BtoA" not in log  # CUT has no F


def test_off_is_the_plain_method():
    for name in ("cyclegan", "cut", "fastcut"):
        plain = cgx.plugins.create("method", name)
        assert not getattr(plain, "uses_labels", False) and not hasattr(plain, "semantic"), name
        assert type(plain).__name__ in ("CycleGAN", "CUT")
        assert type(cgx.plugins.create("method", name, semantic=None)) is type(plain)


def test_semantic_without_labels_is_a_named_error(tmp_path):
    from cgx.testing import ContractError

    with pytest.raises(ContractError, match="semantic consistency needs domain A's labels: set data.a.labels"):
        check_method({"name": "cyclegan", "semantic": {"network": TINY_SEG}}, tmp_path)


def test_segmenter_run_of_a_run_without_one_is_one_line(tiny_run):
    from cgx.errors import UsageError
    from cgx.eval.segmenters import build_segmenter
    from cgx.infer import load_generators

    with pytest.raises(UsageError, match=r"--segmenter run: the run's method \('?cyclegan'?\) trains no segmenter"):
        build_segmenter("run", torch.device("cpu"), context=load_generators(tiny_run))


def test_init_from_is_read_only_when_a_run_starts(tmp_path, labelled_data):
    """method.semantic.init_from starts the segmenter of a new run; a resume and translate take the
    checkpoint's weights and need neither the file nor a load into networks built on the meta device
    (which torch warned about)."""
    import warnings

    import yaml

    from cgx.infer import load_generators
    from cgx.run import main as run_main

    seg = cgx.plugins.create("segmenter", "unet", in_channels=3, classes=4, **{k: v for k, v in TINY_SEG.items()
                                                                                  if k != "name"})
    start = tmp_path / "seg_A.pth"
    torch.save({k: torch.full_like(v, 0.25) if v.is_floating_point() else v for k, v in seg.state_dict().items()},
               start)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        **LABELLED, "method": {"name": "cyclegan", "semantic": {"network": TINY_SEG, "init_from": str(start)}},
        "model": {"generator": {"name": "resnet", "ngf": 4, "n_blocks": 1},
                  "discriminator": {"name": "patchgan", "ndf": 4, "n_layers": 1}},
        "data": {**LABELLED["data"], "source": "folder", "root": str(labelled_data), "load_size": 36, "crop_size": 32,
                 "workers": 0},
        "train": {"run_dir": str(tmp_path / "run"), "steps": 1, "precision": "fp32", "image_every": 0,
                  "progress": False}}))
    assert run_main([str(recipe)]) == 0
    first = shared(tmp_path / "run/checkpoints/step_00000001")["groups"]["segmenter"]["module"]
    weights = [v for k, v in first.items() if k.endswith("weight")]
    assert weights and all((v - 0.25).abs().max() < 1e-3 for v in weights)  # the file's, one Adam step on
    start.unlink()  # the file is gone: resume and inference must not need it
    assert run_main([str(recipe), "train.steps=2"]) == 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gens = load_generators(tmp_path / "run")
    assert gens.step == 2
