"""The recipe reference (``docs/recipe-reference.md``), generated from the config dataclasses themselves.

Every recipe key with its type, default, accepted values and meaning. The meaning is the field's
docstring in ``cgx/config.py`` (the string literal right after the field, as torchtitan writes them),
read from the module's source; the accepted values come from the field's annotation (``Literal``)
and from ``cgx.config.RANGES``. A key without a docstring is an error here, so a new key cannot be
added undocumented.

    python -m cgx.recipe_reference                      # print it
    python -m cgx.recipe_reference -o docs/recipe-reference.md
    python -m cgx.recipe_reference --check docs/recipe-reference.md   # exit 1 if the file is stale
"""
from __future__ import annotations

import argparse
import ast
import dataclasses
import inspect
import os
import sys
import textwrap
import typing
from dataclasses import dataclass
from pathlib import Path

import yaml

from . import config_checks as config_module
from .config import RANGES, ComponentConfig, Config, ImageSpec, OptimConfig, OptimGroupConfig

COMMAND = "python -m cgx.recipe_reference -o docs/recipe-reference.md"

# Plugin sections name a registered plugin of this kind (``cgx plugins``); their other keys are its arguments.
PLUGIN_KINDS = {
    "method": "method",
    "model.generator": "generator",
    "model.discriminator": "discriminator",
    "loss.gan": "adversarial loss",
    "loss.cycle": "reconstruction loss",
    "buffer": "buffer",
    "logging.backends": "logger",
    "augment": "augment",
}

# Plugin sections whose kind has a name for off (cgx.plugins.kinds.Kind.off): nothing is built.
OFF = {"augment": "none"}

# What the loader checks in code rather than through an annotation or RANGES (cgx.config._check_*);
# tests/test_recipe_reference.py gives each key a value outside it and expects the recipe refused.
CHECKED_IN_CODE = {
    "optim.betas": "two numbers, each in [0, 1)",
    "distributed.zero_stage": "0, 1, 2",
    "distributed.offload_optimizer": "true only with strategy deepspeed, zero_stage >= 1, optim.name adam",
    "data.a.channels": f"1 to {config_module.MAX_CHANNELS}",
    "data.b.channels": f"1 to {config_module.MAX_CHANNELS}",
    "data.a.max_pixels": "positive",
    "data.b.max_pixels": "positive",
    "data.load_size": "positive; >= data.crop_size when resizing",
    "eval.every": ">= 0; a multiple of train.ckpt_every",
    "eval.max_images": ">= 2, or null",
    "eval.batch_size": "positive",
    "eval.bands": "three different band numbers below the domain's channel count, or null",
    **{f"data.{d}.labels.{k}": v for d in ("a", "b") for k, v in (
        ("classes", f"1 to {config_module.MAX_CLASS_VALUE}"),
        ("ignore_index", f"not a class: classes to {config_module.MAX_CLASS_VALUE}"),
        ("palette", "null, or one different [r, g, b] (each 0..255) per class"))},
}


@dataclass(frozen=True)
class Key:
    """One row of the reference."""

    key: str
    type: str
    default: str
    accepted: str
    meaning: str


def attribute_docs(cls) -> dict[str, str]:
    """The docstrings written right after each field of dataclass ``cls`` (from its source)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    body = tree.body[0].body
    docs: dict[str, str] = {}
    for node, after in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)
                and isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)):
            docs[node.target.id] = after.value.value
    return docs


def one_line(doc: str) -> str:
    """A docstring as one line of Markdown (reST ````x```` as ```x```; table pipes escaped)."""
    return " ".join(doc.split()).replace("``", "`").replace("|", "\\|")


def show(value) -> str:
    """A default as it is written in a recipe (YAML, flow style)."""
    if isinstance(value, ComponentConfig):
        value = value.to_dict()
    elif isinstance(value, list):
        value = [v.to_dict() if isinstance(v, ComponentConfig) else v for v in value]
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text.removesuffix("\n...").strip()


def type_name(tp) -> str:
    """An annotation in the words of a recipe: int, float, bool, string, list of ..., or ... | null."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Literal:
        kinds = {"bool" if isinstance(a, bool) else "int" if isinstance(a, int) else "string" for a in args}
        return " \\| ".join(sorted(kinds))
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        inner = [type_name(a) for a in args if a is not type(None)]
        return " \\| ".join(inner) + (" \\| null" if type(None) in args else "")
    if origin is list:
        return f"list of {type_name(args[0])}"
    return {int: "int", float: "float", bool: "bool", str: "string"}.get(tp, getattr(tp, "__name__", str(tp)))


def accepted(key: str, tp) -> str:
    """What the loader accepts for ``key``: a Literal's values, RANGES' bounds, the checks in code."""
    parts = []
    group = key.startswith("optim.<group>.")
    if group:  # optim.<group>.KEY: what optim.KEY accepts, or null (optim's value)
        if key == "optim.<group>.update_every":
            return ">= 1"
        key = key.replace("optim.<group>.", "optim.")
        tp = next(a for a in typing.get_args(tp) if a is not type(None))
    lit = [a for a in typing.get_args(tp) if typing.get_origin(tp) is typing.Literal]
    if lit:
        parts.append(", ".join(show(a) for a in lit))
    for name, low, high, low_ok in RANGES:
        if name == key and key not in CHECKED_IN_CODE:
            if high is not None:
                parts.append(f"in [{low}, {high})" if low_ok else f"in ({low}, {high})")
            else:
                parts.append(">= 0" if low_ok and low == 0 else "positive" if low == 0 else f"> {low}")
    if key in CHECKED_IN_CODE:
        parts.append(CHECKED_IN_CODE[key])
    if key in PLUGIN_KINDS:
        kind = PLUGIN_KINDS[key]
        parts.append(f"a registered {kind} (`cgx plugins`) and its arguments")
        if key in OFF:
            parts.append(f"{OFF[key]}: off")
    if not parts and tp is bool:
        parts.append("true, false")
    if group:
        return "; ".join(parts) + (" or null" if parts else "null or any")
    return "; ".join(parts) or "any"


def _default(f: dataclasses.Field):
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def sections(cls=Config, prefix: str = "") -> list[tuple[str, str, list[Key]]]:
    """``[(section, its docstring, its keys)]`` in the order of the dataclasses; nested sections follow."""
    docs = attribute_docs(cls)
    hints = typing.get_type_hints(cls)
    keys: list[Key] = []
    nested: list[tuple[str, str, list[Key]]] = []
    for f in dataclasses.fields(cls):
        key = f"{prefix}{f.name}"
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and tp is not ComponentConfig:
            if tp is ImageSpec:  # data.a, data.b: two small sections of the same class
                nested.append((key, docs.get(f.name, ""), _rows(tp, f"{key}.", _default(f))))
            else:
                nested.extend(sections(tp, f"{key}."))
            continue
        if f.name not in docs:
            raise ValueError(f"cgx/config.py: {cls.__name__}.{f.name} ({key}) has no docstring; write its meaning "
                             f"as a string literal on the line after the field")
        shown_type = ("plugin section" if tp is ComponentConfig else
                      "list of plugin sections" if tp == list[ComponentConfig] else type_name(tp))
        keys.append(Key(key, shown_type, show(_default(f)), accepted(key, tp), one_line(docs[f.name])))
    name = prefix.rstrip(".") or "top level"
    if cls is OptimConfig:  # optim.<group>: a section per network group, under the group's name
        group = f"{prefix}<group>"
        nested.insert(0, (group, one_line(inspect.getdoc(OptimGroupConfig) or ""),
                          _rows(OptimGroupConfig, f"{group}.", OptimGroupConfig())))
    return [(name, one_line(inspect.getdoc(cls) or ""), keys), *nested]


def _rows(cls, prefix: str, value) -> list[Key]:
    """The keys of a small section; an optional sub-section (``data.a.labels``) is followed by its own keys,
    with the defaults they take when it is given."""
    from .config import _optional_section

    docs, hints = attribute_docs(cls), typing.get_type_hints(cls)
    rows = []
    for f in dataclasses.fields(cls):
        rows.append(Key(f"{prefix}{f.name}", type_name(hints[f.name]), show(getattr(value, f.name)),
                        accepted(f"{prefix}{f.name}", hints[f.name]), one_line(docs[f.name])))
        section = _optional_section(hints[f.name])
        if section is not None:
            rows += _rows(section, f"{prefix}{f.name}.", section())
    return rows


def render() -> str:
    """The whole reference as Markdown."""
    out = [
        "# Recipe reference",
        "",
        f"<!-- Generated from cgx/config.py by `{COMMAND}`; do not edit by hand. -->",
        "",
        "Every key a recipe may hold, with its type, default, what is accepted and what it means. Set a key in",
        "the recipe's YAML or on the command line with its dotted name (`train.steps=200`); an unknown key, a",
        "wrong type or a value outside what is accepted stops the run before any work, naming the key.",
        "Plugin sections (`method`, `model.generator`, `model.discriminator`, `loss.gan`, `loss.cycle`,",
        "`buffer`, each item of `logging.backends`) take `name` plus that plugin's own arguments, which",
        "`cgx plugins` lists. How recipes are used: [training.md](training.md).",
        "",
    ]
    groups = sections()
    out.append(" · ".join(f"[`{name}`](#{anchor(name)})" for name, _, _ in groups))
    out.append("")
    for name, doc, keys in groups:
        out += [f"## `{name}`" if "<" in name else f"## {name}", ""]  # (<group> would read as an HTML tag)
        if doc:
            out += [doc, ""]
        out += ["| key | type | default | accepted | meaning |", "|---|---|---|---|---|"]
        for k in keys:
            default = k.default.replace("|", "\\|")
            out.append(f"| `{k.key}` | {k.type} | `{default}` | {k.accepted} | {k.meaning} |")
        out.append("")
    return "\n".join(out)


def anchor(title: str) -> str:
    """GitHub's anchor for a heading ``title`` (lower case; punctuation but - and _ dropped; spaces as -)."""
    text = title.strip().lower()
    return "".join(c for c in text if c.isalnum() or c in "-_ ").replace(" ", "-")


def count_keys() -> int:
    return sum(len(keys) for _, _, keys in sections())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m cgx.recipe_reference",
        description="Print the recipe reference (every recipe key: type, default, accepted values, meaning), "
                    "generated from cgx/config.py.")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("-o", "--output", metavar="PATH", help="write it to PATH (e.g. docs/recipe-reference.md)")
    group.add_argument("--check", metavar="PATH", help="exit 1 if PATH differs from what would be written")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        path = Path(args.check)
        try:
            current = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            print(f"cgx: cannot read {str(path)!r} ({type(e).__name__}); write it with: {COMMAND}", file=sys.stderr)
            return 1
        if current != text:
            print(f"cgx: {str(path)!r} is out of date with cgx/config.py; regenerate it with: {COMMAND}",
                  file=sys.stderr)
            return 1
        return 0
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8")
        except OSError as e:
            print(f"cgx: cannot write {str(args.output)!r} ({e.strerror or type(e).__name__})", file=sys.stderr)
            return 1
        return 0
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except BrokenPipeError:  # `... | head`: the reader left; say nothing more (Python's documented recipe)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0


if __name__ == "__main__":
    sys.exit(main())
