"""Registries of components, filled once from the ``cgx`` pluggy hooks."""
from __future__ import annotations

import fnmatch
import hashlib
import importlib
import importlib.util
import inspect
import os
import sys
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import pluggy

from ..coerce import CoercionError, coerce, describe, brief
from ..errors import PluginError
from . import hookspecs
from .kinds import KINDS

ENTRY_POINT_GROUP = "cgx"
LOAD_ENV = "CGX_LOAD_PLUGINS"
"""Comma-separated entry-point or distribution names: only those installed plugins load.
Empty string: none. Unset: all."""


@dataclass(frozen=True)
class Entry:
    kind: str
    name: str
    factory: Callable
    source: str  # "cgx 0.1.0 (entry point resnet: cgx_plugins.generators.resnet)", a module, or a path


class Registry:
    """The plugin manager and the registry of each kind it fills."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager("cgx")
        self.pm.add_hookspecs(hookspecs)
        self._entries: dict[str, dict[str, Entry]] = {k: {} for k in KINDS}
        self._sources: dict[int, str] = {}
        self._files: dict[str, str] = {}
        """Every registered plugin module's identity (``_identity``) -> its source: one module reached two
        ways (a recipe's path and an installed entry point) registers once."""
        self._fixes: dict[str, str] = {}
        """Source -> how a user removes it (for a duplicate name); none for the built-ins."""
        self._loaded_entry_points = False

    # --- loading -----------------------------------------------------------------------------

    def load_entry_points(self) -> None:
        """Load installed plugins (the built-ins included) once, honouring ``CGX_LOAD_PLUGINS``."""
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        from importlib.metadata import distributions

        allowed = os.environ.get(LOAD_ENV)
        allow = None if allowed is None else {s.strip() for s in allowed.split(",") if s.strip()}
        seen = set()
        for dist in distributions():
            for ep in dist.entry_points:
                if ep.group != ENTRY_POINT_GROUP or (ep.name, ep.value) in seen:
                    continue
                seen.add((ep.name, ep.value))
                dist_name = dist.metadata["name"]
                if allow is not None and ep.name not in allow and dist_name not in allow:
                    continue
                source = f"{dist_name} {dist.version} (entry point {ep.name} = {ep.value})"
                try:
                    module = ep.load()
                except (Exception, SystemExit) as e:  # a broken third-party plugin (even sys.exit) names itself
                    raise PluginError(
                        f"plugin {ep.name!r} from {source} failed to import: {type(e).__name__}: {e}. "
                        f"Skip it with {LOAD_ENV}=<comma-separated plugins to load>."
                    ) from e
                fix = None if dist_name == "cgx" else (
                    f"uninstall {dist_name} (pip uninstall {dist_name}) or skip it with {LOAD_ENV}=<the plugins to load>")
                self.add_plugin(module, source, name=f"{dist_name}:{ep.name}", fix=fix)

    def load_module(self, spec: str, base_dir: str | Path | None = None) -> None:
        """Load an extra plugin module named by a recipe: an importable name or a ``.py`` path."""
        if spec.endswith(".py") or os.sep in spec or "/" in spec:
            path = Path(spec)
            if not path.is_absolute() and base_dir is not None:
                path = Path(base_dir) / path
            if not path.is_file():
                raise PluginError(f"plugin module file not found: {path}")
            source = str(path.resolve())
            if self.pm.get_plugin(source) is not None or _identity(path) in self._files:  # already loaded
                return
            mod_name = f"cgx_recipe_plugin_{path.stem}_{abs(hash(source)):x}"
            spec_obj = importlib.util.spec_from_file_location(mod_name, path)
            module = importlib.util.module_from_spec(spec_obj)
            try:
                sys.modules[mod_name] = module
                spec_obj.loader.exec_module(module)
            except (Exception, SystemExit) as e:
                sys.modules.pop(mod_name, None)
                raise PluginError(f"plugin module {path} failed to import: {type(e).__name__}: {e}") from e
        else:
            try:
                module = importlib.import_module(spec)
            except (Exception, SystemExit) as e:
                raise PluginError(f"plugin module {spec!r} failed to import: {type(e).__name__}: {e}") from e
            source = f"module {spec}"
        if self.pm.is_registered(module):
            return
        self.add_plugin(module, source, name=source, fix=f"remove {spec} from the recipe's plugins: (or --plugins)")

    def add_plugin(self, plugin: Any, source: str, name: str | None = None, fix: str | None = None) -> None:
        """Register a pluggy plugin object (module or instance) and collect what it registers. A module
        whose file is already registered (the same module imported under another name: by path from a
        recipe and as an installed entry point) is not registered again. ``fix``: how a user removes
        this source, named when one of its names is taken."""
        if self.pm.is_registered(plugin):
            return
        file = _module_file(plugin)
        identity = _identity(Path(file)) if file is not None else None
        if identity is not None and identity in self._files:
            return
        self.pm.register(plugin, name=name)
        self._sources[id(plugin)] = source
        if identity is not None:
            self._files[identity] = source
        if fix is not None:
            self._fixes[source] = fix
        try:
            unknown = [i.function.__name__ for hook in self.pm.hook.__dict__.values()
                       if isinstance(hook, pluggy.HookCaller) and not hook.has_spec()
                       for i in hook.get_hookimpls() if i.plugin is plugin]
            if unknown:
                raise PluginError(f"plugin {source} implements {', '.join(sorted(unknown))}, which is not a cgx hook; "
                                  f"hooks: {', '.join(k.hook for k in KINDS.values())}")
            # Called through pluggy, for this plugin alone (a subset hook caller): each component is
            # registered with the source that registered it, so a duplicate name can name both sources.
            others = [p for p in self.pm.get_plugins() if p is not plugin]
            for kind in KINDS.values():
                self.pm.subset_hook_caller(kind.hook, remove_plugins=others)(register=self._register_fn(kind.name, source))
        except Exception:
            self.remove_plugin(plugin)
            raise

    def remove_plugin(self, plugin: Any) -> None:
        for reg in self._entries.values():
            for name in [n for n, e in reg.items() if e.source == self._plugin_source(plugin)]:
                del reg[name]
        if self.pm.is_registered(plugin):
            self.pm.unregister(plugin)
        source = self._sources.pop(id(plugin), None)
        self._files = {f: s for f, s in self._files.items() if s != source}

    def _plugin_source(self, plugin: Any) -> str | None:
        return self._sources.get(id(plugin))

    def _register_fn(self, kind: str, source: str) -> Callable:
        def register(name: str, factory: Callable) -> None:
            if not isinstance(name, str) or not name:
                raise PluginError(f"{source}: {kind} name must be a non-empty string, got {name!r}")
            if not callable(factory):
                raise PluginError(f"{source}: {kind} {name!r} factory is not callable")
            if name == KINDS[kind].off:
                raise PluginError(f"{source}: {kind} name {name!r} is the recipe's word for off "
                                  f"({KINDS[kind].recipe_keys[0]}: {name}); choose another name")
            reg = self._entries[kind]
            if name in reg:
                first = reg[name].source
                fixes = [self._fixes[s] for s in (first, source) if s in self._fixes]
                raise PluginError(
                    f"duplicate {kind} name {name!r}: registered by {first} and again by {source} (two different "
                    f"modules); keep one: {' or '.join([*fixes, f'rename {name!r} in one of them'])}")
            reg[name] = Entry(kind, name, factory, source)

        return register

    # --- queries -----------------------------------------------------------------------------

    def entries(self, kind: str | None = None) -> list[Entry]:
        self.load_entry_points()
        kinds = KINDS if kind is None else (_check_kind(kind),)
        return [e for k in kinds for _, e in sorted(self._entries[k].items())]

    def available(self, kind: str, pattern: str = "*") -> list[str]:
        return [e.name for e in self.entries(kind) if fnmatch.fnmatch(e.name, pattern)]

    def get(self, kind: str, name: str) -> Entry:
        self.load_entry_points()
        reg = self._entries[_check_kind(kind)]
        if name not in reg:
            names = ", ".join(sorted(reg)) or "(none loaded)"
            other = [k for k in KINDS if k != kind and name in self._entries[k]]
            hint = f" ({brief(name)} is a {other[0]})" if other else ""
            raise PluginError(f"unknown {kind} {brief(name)}{hint}; available: {names}")
        return reg[name]

    def check_kwargs(self, kind: str, name: str, kwargs: dict) -> dict:
        """``kwargs`` coerced to the factory's annotations (``cgx.coerce``, the rules recipe keys
        follow); PluginError for an argument the factory does not accept or a value that does not fit."""
        entry = self.get(kind, name)
        params = inspect.signature(entry.factory).parameters
        if any(p.kind is p.VAR_KEYWORD for p in params.values()):
            return dict(kwargs)
        accepted = [n for n, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)]
        try:
            hints = typing.get_type_hints(entry.factory)
        except Exception:
            hints = {}
        out = {}
        for key, value in kwargs.items():
            if key not in accepted:
                raise PluginError(
                    f"{kind} {name!r} does not accept argument {brief(key)}; accepted: {_describe(params, hints)}"
                )
            try:
                out[key] = coerce(hints[key], value) if key in hints else value
            except CoercionError as e:
                raise PluginError(f"{kind} {name!r} argument {e.at(repr(key))}") from None
        return out

    def create(self, kind: str, name: str, **kwargs) -> Any:
        """Build the component, after checking its arguments; refuse what does not fit ``kind``'s
        Protocol (``cgx.plugins.types``), naming the plugin and its source. Whatever the factory
        raises (a value it refuses, ``ngf=-4``) comes out as a one-line PluginError naming the
        plugin, its source and the arguments it was given (the original exception chained)."""
        kwargs = self.check_kwargs(kind, name, kwargs)
        entry = self.get(kind, name)
        try:
            obj = entry.factory(**kwargs)
        except Exception as e:  # noqa: BLE001 -- whatever a factory raises names the plugin and its arguments
            given = ", ".join(f"{k}={brief(v)}" for k, v in kwargs.items()) or "no arguments"
            why = str(e).splitlines()[0] if str(e) else ""
            raise PluginError(f"{kind} {name!r} from {entry.source} cannot be built with {given}: "
                              f"{type(e).__name__}: {why}") from e
        lacks = KINDS[kind].missing(obj)
        if lacks:
            protocol = KINDS[kind].protocol.__name__
            raise PluginError(
                f"{kind} {name!r} from {entry.source}: its factory returned {type(obj).__module__}."
                f"{type(obj).__qualname__}, which is not a {protocol} "
                f"(cgx.plugins.types.{protocol}): it needs {', '.join(lacks)}"
            )
        return obj


def _module_file(plugin: Any) -> str | None:
    """The source file of a plugin module (None for an object or a module without one)."""
    file = getattr(plugin, "__file__", None) if isinstance(plugin, type(sys)) else None
    return file or None


def _identity(path: Path) -> tuple[str, str]:
    """What makes two plugin module files one module: the module's name and the file's bytes. The file a
    recipe names and the copy ``pip install`` put in site-packages (or the same file, editable) are one;
    another module, or another version of it, is not."""
    try:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        digest = str(path.resolve())
    stem = path.parent.name if path.name == "__init__.py" else path.stem
    return stem, digest


def _check_kind(kind: str) -> str:
    if kind not in KINDS:
        raise PluginError(f"unknown plugin kind {kind!r}; kinds: {', '.join(KINDS)}")
    return kind


def _describe(params, hints) -> str:
    out = []
    for n, p in params.items():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        t = f": {describe(hints[n])}" if n in hints else ""
        d = "" if p.default is p.empty else f" = {p.default!r}"
        out.append(f"{n}{t}{d}")
    return ", ".join(out) or "(no arguments)"
