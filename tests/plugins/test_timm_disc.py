"""The timm feature-backbone discriminator: local weights only, frozen or trainable backbone, and a
frozen backbone staying frozen through real training steps (the trainer's requires_grad toggling)."""
from __future__ import annotations

import pytest
import torch
import yaml
from torch import nn

import cgx.plugins
from cgx.config import load_config
from cgx.plugins import PluginError
from cgx.nn.freeze import set_requires_grad
from cgx.train.trainer import Trainer

timm = pytest.importorskip("timm")

BACKBONE = "lcnet_050"  # tiny (0.1 M parameters up to level 3) and fast on CPU


def build(**kwargs) -> nn.Module:
    torch.manual_seed(0)
    return cgx.plugins.create("discriminator", "timm", **{"backbone": BACKBONE, "head_channels": 8, **kwargs})


@pytest.fixture(scope="module")
def classifier_weights(tmp_path_factory):
    """A timm classifier's full state dict (classifier included), as a user would save it: .pth and .safetensors."""
    from safetensors.torch import save_file

    torch.manual_seed(123)
    model = timm.create_model(BACKBONE, pretrained=False)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    folder = tmp_path_factory.mktemp("weights")
    torch.save(state, folder / "backbone.pth")
    save_file(state, str(folder / "backbone.safetensors"))
    return folder, state


@pytest.fixture
def no_downloads(monkeypatch):
    """Every way timm could fetch weights raises."""
    import timm.models._builder as builder

    def refuse(*args, **kwargs):
        raise AssertionError(f"tried to download: {args} {kwargs}")

    for name in ("load_state_dict_from_url", "download_cached_file", "load_state_dict_from_hf",
                 "load_custom_from_hf", "hf_hub_download"):
        monkeypatch.setattr(builder, name, refuse, raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def backbone_state(d: nn.Module) -> dict:
    return {k.removeprefix("model."): v for k, v in d.backbone.state_dict().items()}


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_weights_from_a_local_file(classifier_weights, suffix, no_downloads):
    folder, state = classifier_weights
    d = build(weights=str(folder / f"backbone{suffix}"))
    loaded = backbone_state(d)
    assert loaded and all(torch.equal(v, state[k]) for k, v in loaded.items())
    # weights given: frozen by default, as in Projected GAN; the heads train
    assert d.frozen
    assert not any(p.requires_grad for p in d.backbone.parameters())
    assert all(p.requires_grad for p in d.heads.parameters())


def test_without_weights_nothing_downloads_and_the_backbone_trains(no_downloads):
    d = build()
    assert not d.frozen
    assert all(p.requires_grad for p in d.parameters())


def test_frozen_and_trainable_per_recipe(classifier_weights):
    folder, _ = classifier_weights
    assert not build(weights=str(folder / "backbone.pth"), frozen=False).frozen
    d = build(frozen=True)
    assert d.frozen and not any(p.requires_grad for p in d.backbone.parameters())


def test_frozen_backbone_keeps_its_batch_norm_statistics():
    d = build(frozen=True).train()
    assert d.training and d.heads.training and not d.backbone.training
    before = {k: v.clone() for k, v in d.backbone.state_dict().items()}
    d(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert all(torch.equal(v, before[k]) for k, v in d.backbone.state_dict().items())
    trainable = build(frozen=False).train()
    assert trainable.backbone.training


def test_weights_file_errors(tmp_path, classifier_weights):
    with pytest.raises(PluginError, match="not found") as e:
        build(weights=str(tmp_path / "absent.pth"))
    assert "absent.pth" in str(e.value)
    folder, _ = classifier_weights
    with pytest.raises(PluginError) as e:
        build(backbone="resnet18", weights=str(folder / "backbone.pth"))
    assert "backbone.pth" in str(e.value) and "'resnet18'" in str(e.value)


def test_backbone_name_errors():
    with pytest.raises(PluginError, match="unknown backbone 'lcnet_0500'") as e:
        build(backbone="lcnet_0500")
    assert "lcnet_050" in str(e.value)  # similar names
    with pytest.raises(PluginError, match="nothing is downloaded"):
        build(backbone="hf-hub:timm/resnet18.a1_in1k")


def test_levels_heads_and_normalisation():
    d = build(levels=[2, 3])
    assert len(d.heads) == 2 and d.reductions == [8, 16]
    x = torch.rand(2, 3, 40, 24) * 2 - 1
    assert [tuple(s.shape) for s in d(x)] == [(2, *s) for s in d.output_shapes(40, 24)] == [(2, 1, 5, 3), (2, 1, 3, 2)]
    # [-1, 1] -> the backbone's mean / std
    mean = torch.tensor(d.backbone.pretrained_cfg["mean"])
    assert torch.allclose(d.mean.flatten(), mean)
    with pytest.raises(PluginError, match="at least one"):
        build(levels=[])


def test_input_size_resizes():
    d = build(input_size=48)
    assert [tuple(s.shape[1:]) for s in d(torch.zeros(1, 3, 32, 32))] == d.output_shapes(32, 32) == [
        (1, 12, 12), (1, 6, 6), (1, 3, 3)]


def test_grey_images():
    d = build(in_channels=1)
    assert [tuple(s.shape) for s in d(torch.zeros(2, 1, 32, 32))] == [(2, 1, 8, 8), (2, 1, 4, 4), (2, 1, 2, 2)]


def test_spectral_norm_on_heads():
    d = build(spectral_norm=True)
    convs = [m for m in d.heads.modules() if isinstance(m, nn.Conv2d)]
    assert convs and all(hasattr(m, "parametrizations") for m in convs)


def test_unreachable_backbone_layers_are_frozen():
    """Layers past the last chosen level: dropped by timm's getter wrapper, or frozen on the fallback path."""
    from cgx_plugins.discriminators.timm_backbone import freeze_unreachable

    d = build(levels=[1])
    sum(s.sum() for s in d(torch.rand(1, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in d.parameters() if p.requires_grad)
    net = timm.create_model(BACKBONE, features_only=True, out_indices=(1,))  # keeps every block
    freeze_unreachable(net, 3)
    frozen = [n for n, p in net.named_parameters() if not p.requires_grad]
    assert frozen and all(p.grad is None for p in net.parameters())
    sum(f.sum() for f in net.eval()(torch.rand(1, 3, 32, 32))).backward()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


# --- the trainer keeps a frozen backbone frozen --------------------------------------------------


def test_set_requires_grad_restores_what_it_changed():
    net = nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2))
    net[0].requires_grad_(False)
    changed = set_requires_grad(net, False)
    assert changed == list(net[1].parameters())
    assert not any(p.requires_grad for p in net.parameters())
    set_requires_grad(changed, True)
    assert [p.requires_grad for p in net.parameters()] == [False, False, True, True]


def test_frozen_backbone_stays_frozen_in_training(make_recipe, classifier_weights):
    folder, state = classifier_weights
    disc = {"name": "timm", "backbone": BACKBONE, "head_channels": 8, "weights": str(folder / "backbone.pth")}
    recipe = make_recipe({"train": {"steps": 2, "ckpt_every": 100}})
    raw = yaml.safe_load(recipe.read_text())
    raw["model"]["discriminator"] = disc
    recipe.write_text(yaml.safe_dump(raw))
    trainer = Trainer(load_config(recipe))
    try:
        discs = trainer.groups["discriminators"].module
        heads_before = {k: v.clone() for k, v in discs.state_dict().items() if ".heads." in f".{k}"}
        trainer.fit()
        for D in (discs.D_A, discs.D_B):
            assert not any(p.requires_grad for p in D.backbone.parameters())
            assert all(p.requires_grad for p in D.heads.parameters())
            assert all(torch.equal(v, state[k]) for k, v in backbone_state(D).items())  # weights and BN stats
            assert not D.backbone.training
        heads_after = {k: v for k, v in discs.state_dict().items() if k in heads_before}
        assert any(not torch.equal(heads_before[k], heads_after[k]) for k in heads_before)
        optimizer_state = trainer.groups["discriminators"].optimizer.state
        backbone_params = {id(p) for D in (discs.D_A, discs.D_B) for p in D.backbone.parameters()}
        assert optimizer_state and not any(id(p) in backbone_params for p in optimizer_state)
    finally:
        trainer.close()
