"""cgx.plugins: the registries filled from the pluggy hooks, entry points, .py plugins, errors."""
from __future__ import annotations

import inspect
import sys

import pytest
import torch
from torch import nn

import cgx.plugins
from cgx.plugins import PluginError, Registry, hookimpl, hookspecs
from cgx.plugins.kinds import KINDS
from cgx.plugins.registry import LOAD_ENV

BUILTINS = {
    "method": {"cyclegan", "cut", "fastcut", "pix2pix"},
    "generator": {"resnet", "unet"},
    "discriminator": {"patchgan", "multiscale", "pixelgan", "timm"},
    "adversarial_loss": {"lsgan", "vanilla", "hinge", "wgangp"},
    "reconstruction_loss": {"l1"},
    "buffer": {"image_pool", "none"},
    "logger": {"tensorboard", "jsonl", "wandb", "mlflow"},
    "augment": {"diffaugment", "ada"},
    "segmenter": {"unet", "timm_fpn"},
}


def n_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.fixture
def only(monkeypatch):
    """Limit entry-point loading of fresh registries: ``only("")`` loads no installed plugin."""

    def set_(value: str | None):
        if value is None:
            monkeypatch.delenv(LOAD_ENV, raising=False)
        else:
            monkeypatch.setenv(LOAD_ENV, value)

    return set_


@pytest.fixture
def clean_modules():
    """Forget the modules that load_module puts in sys.modules for .py plugins."""
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        if name.startswith("cgx_recipe_plugin_"):
            del sys.modules[name]


# --- a test plugin implementing every hook -----------------------------------------------------


class TinyGenerator(nn.Module):
    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return torch.tanh(self.conv(x))


class TinyBuffer:
    def __init__(self, size: int = 2) -> None:
        self.size = size

    def query(self, images):
        return images

    def state_dict(self):
        return {"size": self.size}

    def load_state_dict(self, state):
        assert state["size"] == self.size


def build_tiny_generator(channels: int = 3) -> nn.Module:
    return TinyGenerator(channels)


class TinyDiscriminator(nn.Conv2d):
    def __init__(self, channels: int) -> None:
        super().__init__(channels, 1, 4, stride=2)

    def output_shapes(self, height: int, width: int) -> list[tuple[int, int, int]]:
        return [(1, (height - 4) // 2 + 1, (width - 4) // 2 + 1)]


class TinyGANLoss:
    def generator_loss(self, fake_scores):
        return (fake_scores - 1).square().mean()

    def discriminator_loss(self, real_scores, fake_scores, batch=None):
        return (real_scores - 1).square().mean() + fake_scores.square().mean()


def build_tiny_discriminator(channels: int = 3, scale: float = 1.0) -> nn.Module:
    return TinyDiscriminator(channels)


def build_tiny_gan() -> TinyGANLoss:
    return TinyGANLoss()


def build_tiny_loss() -> nn.Module:
    return nn.MSELoss()


def build_tiny_buffer(size: int = 2) -> TinyBuffer:
    return TinyBuffer(size)


class TinySegmenter(nn.Conv2d):
    def __init__(self, in_channels: int = 3, classes: int = 2) -> None:
        super().__init__(in_channels, classes, 1)
        self.classes = classes


def build_tiny_segmenter(in_channels: int = 3, classes: int = 2) -> TinySegmenter:
    return TinySegmenter(in_channels, classes)


class TinyLogger:
    def __init__(self, prefix: str = "") -> None:
        self.prefix, self.calls = prefix, []

    def open(self, run):
        self.calls.append(("open", run.start_step))

    def recipe(self, config):
        self.calls.append(("recipe",))

    def scalars(self, step, values):
        self.calls.append(("scalars", step))

    def image(self, step, tag, grid):
        self.calls.append(("image", step, tag))

    def event(self, step, name, fields):
        self.calls.append(("event", step, name))

    def close(self):
        self.calls.append(("close",))


def build_tiny_logger(prefix: str = "") -> TinyLogger:
    return TinyLogger(prefix)


class TinyAugment:
    def __call__(self, images):
        return -images


def build_tiny_augment() -> TinyAugment:
    return TinyAugment()


def build_tiny_method():
    from cgx_plugins.methods.cyclegan import CycleGAN

    return CycleGAN(cycle_weight=1.0, identity_weight=0.0)


class TinyPlugin:
    """Implements every cgx hook; test_every_hookspec_is_tested checks that it keeps doing so."""

    @hookimpl
    def cgx_register_methods(self, register):
        register("tiny_method", build_tiny_method)

    @hookimpl
    def cgx_register_generators(self, register):
        register("tiny_gen", build_tiny_generator)

    @hookimpl
    def cgx_register_discriminators(self, register):
        register("tiny_disc", build_tiny_discriminator)

    @hookimpl
    def cgx_register_adversarial_losses(self, register):
        register("tiny_gan", build_tiny_gan)

    @hookimpl
    def cgx_register_reconstruction_losses(self, register):
        register("tiny_loss", build_tiny_loss)

    @hookimpl
    def cgx_register_buffers(self, register):
        register("tiny_buffer", build_tiny_buffer)

    @hookimpl
    def cgx_register_loggers(self, register):
        register("tiny_logger", build_tiny_logger)

    @hookimpl
    def cgx_register_augments(self, register):
        register("tiny_augment", build_tiny_augment)

    @hookimpl
    def cgx_register_segmenters(self, register):
        register("tiny_seg", build_tiny_segmenter)


TINY = {"method": "tiny_method", "generator": "tiny_gen", "discriminator": "tiny_disc", "adversarial_loss": "tiny_gan",
        "reconstruction_loss": "tiny_loss", "buffer": "tiny_buffer", "logger": "tiny_logger",
        "augment": "tiny_augment",
        "segmenter": "tiny_seg"}


def hookspec_names() -> list[str]:
    return sorted(n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("cgx_register_"))


def test_every_hookspec_is_tested():
    """Adding a hookspec without adding it to TinyPlugin (and so to these tests) fails here."""
    names = hookspec_names()
    assert names, "no cgx_register_* hookspecs found"
    for name in names:
        impl = getattr(TinyPlugin, name, None)
        assert impl is not None, f"hookspec {name} has no implementation in the test plugin"
        assert hasattr(impl, "cgx_impl"), f"TinyPlugin.{name} is not marked with @hookimpl"
    # ...and every hookspec is one the registry calls, with one registry kind each.
    assert sorted(k.hook for k in KINDS.values()) == names
    assert set(TINY) == set(cgx.plugins.KINDS)


def test_every_hookspec_takes_register():
    for name in hookspec_names():
        assert list(inspect.signature(getattr(hookspecs, name)).parameters) == ["register"]


def test_test_plugin_components_are_built(only):
    only("")
    registry = Registry()
    registry.add_plugin(TinyPlugin(), source="test")
    for kind, name in TINY.items():
        assert registry.available(kind) == [name]
    x = torch.randn(2, 3, 8, 8)
    gen = registry.create("generator", "tiny_gen")
    assert isinstance(gen, TinyGenerator) and gen(x).shape == x.shape
    gen1 = registry.create("generator", "tiny_gen", channels=1)
    assert gen1.conv.in_channels == 1
    disc = registry.create("discriminator", "tiny_disc", scale=2)  # an int is fine for a float
    assert disc(x).shape[1:] == (1, *disc.output_shapes(8, 8)[0][1:])
    gan = registry.create("adversarial_loss", "tiny_gan")
    assert gan.generator_loss(torch.ones(2)).item() == 0.0
    loss = registry.create("reconstruction_loss", "tiny_loss")
    assert loss(x, x).item() == 0.0
    buf = registry.create("buffer", "tiny_buffer", size=5)
    assert isinstance(buf, TinyBuffer) and buf.size == 5 and buf.query(x) is x
    logger = registry.create("logger", "tiny_logger", prefix="x")
    assert isinstance(logger, TinyLogger) and logger.prefix == "x"
    seg = registry.create("segmenter", "tiny_seg", classes=4)
    assert seg.classes == 4 and seg(x).shape == (2, 4, 8, 8)


def test_entries_report_source(only):
    only("")
    registry = Registry()
    registry.add_plugin(TinyPlugin(), source="test")
    entries = registry.entries()
    assert {(e.kind, e.name, e.source) for e in entries} == {(k, n, "test") for k, n in TINY.items()}
    (gen,) = registry.entries("generator")
    assert gen.factory is build_tiny_generator


def test_test_plugin_alongside_builtins(only):
    only(None)
    registry = Registry()
    registry.add_plugin(TinyPlugin(), source="test")
    for kind, names in BUILTINS.items():
        assert set(registry.available(kind)) >= names | {TINY[kind]}
    resnet = next(e for e in registry.entries("generator") if e.name == "resnet")
    assert "entry point resnet" in resnet.source and resnet.source.startswith("cgx ")


def test_adding_the_same_plugin_twice_is_a_no_op(only):
    only("")
    registry = Registry()
    plugin = TinyPlugin()
    registry.add_plugin(plugin, source="test")
    registry.add_plugin(plugin, source="test")
    assert registry.available("generator") == ["tiny_gen"]


def test_module_object_as_plugin(only):
    only("")
    import types

    module = types.ModuleType("tiny_module_plugin")

    @hookimpl
    def cgx_register_reconstruction_losses(register):
        register("mod_loss", build_tiny_loss)

    module.cgx_register_reconstruction_losses = cgx_register_reconstruction_losses
    registry = Registry()
    registry.add_plugin(module, source="module tiny")
    assert registry.available("reconstruction_loss") == ["mod_loss"]
    assert registry.entries("reconstruction_loss")[0].source == "module tiny"
    assert registry.available("generator") == []


# --- the default registry and its built-ins ----------------------------------------------------


def test_parameter_counts():
    assert n_params(cgx.plugins.create("generator", "resnet")) == 11_378_179
    assert n_params(cgx.plugins.create("generator", "resnet", n_blocks=6)) == 7_837_699
    assert n_params(cgx.plugins.create("discriminator", "patchgan")) == 2_764_737


@pytest.mark.parametrize("kind", sorted(BUILTINS))
def test_available_lists_builtins(kind):
    names = cgx.plugins.available(kind)
    assert set(names) >= BUILTINS[kind]
    assert names == sorted(names)


def test_available_wildcards():
    assert cgx.plugins.available("generator", "res*") == ["resnet"]
    assert cgx.plugins.available("generator", "*net") == ["resnet", "unet"]
    assert set(cgx.plugins.available("adversarial_loss", "l*")) >= {"lsgan"}
    assert cgx.plugins.available("adversarial_loss", "*gan*") == ["lsgan", "wgangp"]
    assert cgx.plugins.available("reconstruction_loss", "l?") == ["l1"]
    assert cgx.plugins.available("discriminator", "no-such-*") == []


def test_default_registry_is_one_object():
    assert cgx.plugins.default_registry() is cgx.plugins.default_registry()


# --- errors --------------------------------------------------------------------------------------


def test_unknown_name_lists_available():
    with pytest.raises(PluginError) as e:
        cgx.plugins.create("generator", "unet_9000")
    msg = str(e.value)
    assert "'unet_9000'" in msg and "available:" in msg and "resnet" in msg


def test_unknown_name_in_empty_registry(only):
    only("")
    with pytest.raises(PluginError, match=r"none loaded"):
        Registry().create("adversarial_loss", "lsgan")


def test_unknown_kwarg_lists_accepted_args():
    with pytest.raises(PluginError) as e:
        cgx.plugins.create("generator", "resnet", nblocks=6)
    msg = str(e.value)
    assert "'nblocks'" in msg and "accepted:" in msg
    accepted = msg.split("accepted:")[1]
    for arg in ("in_channels", "out_channels", "ngf", "n_blocks", "norm", "init_std"):
        assert arg in accepted
    assert "n_blocks: int = 9" in accepted


def test_mistyped_kwarg_names_arg_and_type():
    with pytest.raises(PluginError) as e:
        cgx.plugins.create("generator", "resnet", n_blocks="nine")
    msg = str(e.value)
    assert "'n_blocks'" in msg and "int" in msg and "'nine'" in msg


@pytest.mark.parametrize("kind, name, kwargs, words", [
    ("generator", "resnet", {"n_blocks": 6.0}, ["'n_blocks'", "int"]),
    ("generator", "resnet", {"n_blocks": True}, ["'n_blocks'", "int"]),
    ("discriminator", "patchgan", {"norm": "group"}, ["'norm'", "'instance'", "'batch'", "'none'"]),
    ("discriminator", "patchgan", {"init_std": "two"}, ["'init_std'", "number", "'two'"]),
    ("buffer", "image_pool", {"size": "50"}, ["'size'", "int"]),
    ("reconstruction_loss", "l1", {"weight": 1.0}, ["'weight'", "(no arguments)"]),
])
def test_more_bad_kwargs(kind, name, kwargs, words):
    with pytest.raises(PluginError) as e:
        cgx.plugins.create(kind, name, **kwargs)
    for w in words:
        assert w in str(e.value)


def test_unknown_kind():
    with pytest.raises(PluginError) as e:
        cgx.plugins.available("generators")
    msg = str(e.value)
    assert "'generators'" in msg
    for kind in cgx.plugins.KINDS:
        assert kind in msg
    with pytest.raises(PluginError, match="unknown plugin kind"):
        cgx.plugins.create("optimizer", "adam")


def test_duplicate_name_names_both_sources(only):
    only("")
    registry = Registry()
    registry.add_plugin(TinyPlugin(), source="first-source")

    class Clash:
        @hookimpl
        def cgx_register_reconstruction_losses(self, register):
            register("tiny_loss", build_tiny_loss)

    with pytest.raises(PluginError) as e:
        registry.add_plugin(Clash(), source="second-source")
    msg = str(e.value)
    assert "'tiny_loss'" in msg and "first-source" in msg and "second-source" in msg
    # the first registration stands
    assert registry.get("reconstruction_loss", "tiny_loss").source == "first-source"


def test_duplicate_of_a_builtin_is_rolled_back(only):
    only(None)
    registry = Registry()
    registry.entries()  # load the built-ins

    class Clash:
        @hookimpl
        def cgx_register_generators(self, register):
            register("fresh_gen", build_tiny_generator)

        @hookimpl
        def cgx_register_discriminators(self, register):
            register("patchgan", build_tiny_discriminator)

    clash = Clash()
    with pytest.raises(PluginError) as e:
        registry.add_plugin(clash, source="clash-source")
    msg = str(e.value)
    assert "'patchgan'" in msg and "clash-source" in msg and "entry point patchgan" in msg
    # nothing of the failed plugin stays registered
    assert "fresh_gen" not in registry.available("generator")
    assert not registry.pm.is_registered(clash)
    assert registry.get("discriminator", "patchgan").source != "clash-source"


@pytest.mark.parametrize("name, factory, words", [
    ("", build_tiny_loss, ["non-empty"]),
    (3, build_tiny_loss, ["non-empty"]),
    ("not_callable", 42, ["'not_callable'", "not callable"]),
])
def test_bad_registrations(only, name, factory, words):
    only("")

    class Bad:
        @hookimpl
        def cgx_register_reconstruction_losses(self, register):
            register(name, factory)

    with pytest.raises(PluginError) as e:
        Registry().add_plugin(Bad(), source="bad-source")
    assert "bad-source" in str(e.value)
    for w in words:
        assert w in str(e.value)


# --- plugin modules named by a recipe ------------------------------------------------------------

PLUGIN_SOURCE = '''
import torch
from cgx.plugins import hookimpl


def build_file_loss(scale: float = 1.0):
    return lambda a, b: scale * (a - b).abs().mean()


@hookimpl
def cgx_register_reconstruction_losses(register):
    register("{name}", build_file_loss)
'''


def test_load_module_from_py_path(tmp_path, only, clean_modules):
    only("")
    path = tmp_path / "file_plugin_a.py"
    path.write_text(PLUGIN_SOURCE.format(name="file_loss"))
    registry = Registry()
    registry.load_module(str(path))
    assert registry.available("reconstruction_loss") == ["file_loss"]
    assert registry.entries("reconstruction_loss")[0].source == str(path.resolve())
    loss = registry.create("reconstruction_loss", "file_loss", scale=2.0)
    assert loss(torch.ones(2), torch.zeros(2)).item() == 2.0


def test_load_module_relative_to_base_dir(tmp_path, only, clean_modules):
    only("")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "file_plugin_b.py").write_text(PLUGIN_SOURCE.format(name="rel_loss"))
    registry = Registry()
    registry.load_module("sub/file_plugin_b.py", base_dir=tmp_path)
    assert registry.available("reconstruction_loss") == ["rel_loss"]


def test_load_module_same_path_twice_is_a_no_op(tmp_path, only, clean_modules):
    # The recipe's `plugins:` list may be applied to the default registry by two runs in one process.
    only("")
    path = tmp_path / "file_plugin_c.py"
    path.write_text(PLUGIN_SOURCE.format(name="twice_loss"))
    registry = Registry()
    registry.load_module(str(path))
    registry.load_module(str(path))
    assert registry.available("reconstruction_loss") == ["twice_loss"]


def test_load_module_by_import_name(only, monkeypatch, tmp_path, request):
    only("")
    (tmp_path / "cgx_test_importable_plugin.py").write_text(PLUGIN_SOURCE.format(name="imported_loss"))
    monkeypatch.syspath_prepend(str(tmp_path))
    request.addfinalizer(lambda: sys.modules.pop("cgx_test_importable_plugin", None))
    registry = Registry()
    registry.load_module("cgx_test_importable_plugin")
    registry.load_module("cgx_test_importable_plugin")  # idempotent
    assert registry.available("reconstruction_loss") == ["imported_loss"]
    assert registry.entries("reconstruction_loss")[0].source == "module cgx_test_importable_plugin"


def test_py_plugin_that_raises_names_the_file(tmp_path, only, clean_modules):
    only("")
    path = tmp_path / "broken_plugin.py"
    path.write_text("raise RuntimeError('boom at import')\n")
    with pytest.raises(PluginError) as e:
        Registry().load_module(str(path))
    msg = str(e.value)
    assert str(path) in msg and "RuntimeError" in msg and "boom at import" in msg
    assert "cgx_recipe_plugin_broken_plugin" not in sys.modules


def test_missing_py_plugin_names_the_file(tmp_path, only):
    only("")
    path = tmp_path / "absent.py"
    with pytest.raises(PluginError, match="not found") as e:
        Registry().load_module(str(path))
    assert str(path) in str(e.value)


def test_unimportable_module_name(only):
    only("")
    with pytest.raises(PluginError, match="'cgx_no_such_plugin_module'"):
        Registry().load_module("cgx_no_such_plugin_module")


# --- CGX_LOAD_PLUGINS ------------------------------------------------------------------------------


def loaded(registry: Registry) -> dict[str, set[str]]:
    return {kind: set(registry.available(kind)) for kind in cgx.plugins.KINDS}


def test_load_plugins_env_limits_entry_points(only):
    only("resnet,lsgan")
    assert loaded(Registry()) == {**{k: set() for k in cgx.plugins.KINDS}, "generator": {"resnet"},
                                  "adversarial_loss": {"lsgan"}}


def test_load_plugins_env_ignores_spaces(only):
    only(" patchgan , image_pool , jsonl")
    assert loaded(Registry()) == {**{k: set() for k in cgx.plugins.KINDS}, "discriminator": {"patchgan"},
                                  "buffer": {"image_pool"}, "logger": {"jsonl"}}


def test_load_plugins_env_empty_loads_none(only):
    only("")
    assert loaded(Registry()) == {k: set() for k in cgx.plugins.KINDS}


def test_load_plugins_env_distribution_name_loads_all_builtins(only):
    only("cgx")
    assert loaded(Registry()) == BUILTINS


def test_load_plugins_env_unset_loads_all(only):
    only(None)
    got = loaded(Registry())
    for kind, names in BUILTINS.items():
        assert got[kind] >= names


def test_load_plugins_env_is_read_on_first_use(only):
    only("")
    registry = Registry()  # nothing loaded yet
    only("l1")
    assert registry.available("reconstruction_loss") == ["l1"]
    only("")
    assert registry.available("reconstruction_loss") == ["l1"]  # loaded once


# --- the typed contract (cgx.plugins.types) ---------------------------------------------------------


def test_yaml_string_numbers_are_coerced_like_recipe_keys():
    """YAML reads 2e-2 (no dot) as a string: plugin arguments follow the recipe keys' rule."""
    import torch.nn as tnn

    disc = cgx.plugins.create("discriminator", "patchgan", init_std="2e-2", ndf=8)
    conv = next(m for m in disc.modules() if isinstance(m, tnn.Conv2d))
    assert 0.01 < conv.weight.std().item() < 0.03


def test_a_loss_of_the_other_kind_is_refused_with_its_kind():
    with pytest.raises(PluginError) as e:
        cgx.plugins.create("adversarial_loss", "l1")
    assert "'l1' is a reconstruction_loss" in str(e.value) and "lsgan" in str(e.value)


@pytest.mark.parametrize("kind, returned, needs", [
    ("generator", lambda: 42, "torch.nn.Module"),
    ("discriminator", lambda: nn.Conv2d(3, 1, 4), "output_shapes()"),
    ("adversarial_loss", lambda: nn.L1Loss(), "generator_loss()"),
    ("reconstruction_loss", lambda: object(), "__call__"),
    ("buffer", lambda: [], "query()"),
    ("logger", lambda: TinyBuffer(), "open()"),
    ("augment", lambda: TinyBuffer(), "__call__"),
])
def test_a_factory_returning_what_does_not_fit_its_kind_is_named(only, kind, returned, needs):
    only("")

    class Misfit:
        pass

    def hook(register):
        register("misfit", returned)

    setattr(Misfit, KINDS[kind].hook, staticmethod(hookimpl(hook)))
    registry = Registry()
    registry.add_plugin(Misfit(), source="misfit-source")
    with pytest.raises(PluginError) as e:
        registry.create(kind, "misfit")
    msg = str(e.value)
    assert "'misfit'" in msg and "misfit-source" in msg and needs in msg and "cgx.plugins.types" in msg


def test_every_builtin_fits_its_protocol():
    for entry in cgx.plugins.entries():
        if not entry.source.startswith("cgx ") or entry.name == "timm":
            continue  # other tests' plugins stay registered; timm needs a backbone (test_timm_disc)
        obj = cgx.plugins.create(entry.kind, entry.name)
        assert isinstance(obj, KINDS[entry.kind].protocol), (entry.kind, entry.name)
        assert KINDS[entry.kind].missing(obj) == []


def test_a_hook_that_is_not_cgx_s_is_refused_with_the_hooks_there_are(only):
    only("")

    class Misspelt:
        @hookimpl
        def cgx_register_losses(self, register):
            register("old_loss", build_tiny_loss)

    registry = Registry()
    with pytest.raises(PluginError) as e:
        registry.add_plugin(Misspelt(), source="misspelt-source")
    msg = str(e.value)
    assert "misspelt-source" in msg and "cgx_register_losses" in msg and "not a cgx hook" in msg
    assert all(k.hook in msg for k in KINDS.values())
    assert registry.available("reconstruction_loss") == []  # nothing of it stays registered


def test_every_hookspec_and_protocol_is_documented():
    """docs/plugins.md names every hook and the Protocol of every kind (datasette keeps the same check)."""
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    for name in hookspec_names():
        assert f"`{name}(register)`" in docs, f"{name} is not documented in docs/plugins.md"
    for kind in KINDS.values():
        assert f"`{kind.name}`" in docs and f"`{kind.protocol.__name__}`" in docs, kind.name
        assert all(f"`{key}`" in docs for key in kind.recipe_keys), kind.name
