"""``cgx plugins show NAME``: what one registered component is, where it comes from and what a recipe may
set (timm's ``list_models`` plus a model card): its kind, source, recipe key, one-line summary (the first
line of its factory's docstring, else of its module's) and every argument with its type and default."""
from __future__ import annotations

import difflib
import inspect
import re
import sys
import typing
from typing import Any

from ..coerce import describe
from ..errors import PluginError
from .kinds import KINDS
from .registry import Entry, Registry


def arguments(entry: Entry) -> list[dict[str, Any]]:
    """The factory's keyword arguments: name, type (as errors and the recipe reference write it; None when
    not annotated) and default (None with ``required`` True when it has none)."""
    params = inspect.signature(entry.factory).parameters
    try:
        hints = typing.get_type_hints(entry.factory)
    except Exception:  # noqa: BLE001 -- an annotation that does not resolve is shown as not annotated
        hints = {}
    out = []
    for name, p in params.items():
        if p.kind not in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD):
            continue
        out.append({"name": name, "type": describe(hints[name]) if name in hints else None,
                    "default": None if p.default is p.empty else p.default, "required": p.default is p.empty})
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        out.append({"name": "**kwargs", "type": None, "default": None, "required": False})
    return out


def summary(entry: Entry) -> str:
    """The first line of the factory's docstring, unless it describes an argument (``width: ...``), else
    of its module's ('' when neither says what the plugin is)."""
    params = inspect.signature(entry.factory).parameters
    for doc in (inspect.getdoc(entry.factory), getattr(sys.modules.get(entry.factory.__module__), "__doc__", None)):
        first = _first_sentence(doc or "")
        if first and first.split()[0].strip("`*,:") not in params:
            return first
    return ""


def _first_sentence(doc: str) -> str:
    """The first sentence of a docstring's first paragraph, on one line."""
    paragraph = " ".join(doc.strip().split("\n\n")[0].split())
    end = re.search(r"[.!?](?=\s+[A-Z`]|$)", paragraph)  # (not "et al. 2021")
    sentence = paragraph[:end.start() + 1] if end else paragraph
    return sentence if len(sentence) <= 160 else sentence[:160].rsplit(" ", 1)[0] + " ..."


def find(registry: Registry, name: str, kind: str | None = None) -> list[Entry]:
    """Every entry registered as ``name`` (of ``kind``); PluginError naming close names when there is none."""
    entries = registry.entries(kind)
    found = [e for e in entries if e.name == name]
    if not found:
        close = difflib.get_close_matches(name, sorted({e.name for e in entries}), n=3)
        where = f"{kind} " if kind else ""
        hint = f"; did you mean {', '.join(close)}?" if close else "; `cgx plugins` lists every one"
        raise PluginError(f"no {where}plugin named {name!r} is registered{hint}")
    return found


def record(entry: Entry) -> dict[str, Any]:
    return {"kind": entry.kind, "name": entry.name, "source": entry.source,
            "recipe_key": ", ".join(KINDS[entry.kind].recipe_keys), "summary": summary(entry),
            "arguments": arguments(entry)}


def render(entry: Entry) -> str:
    """The human form of ``record``."""
    r = record(entry)
    lines = [f"{r['kind']} {r['name']}" + (f": {r['summary']}" if r["summary"] else ""),
             f"  source:     {r['source']}",
             f"  recipe key: {r['recipe_key']}" + (" (a list item)" if KINDS[entry.kind].many else ""),
             "  arguments:" + ("" if r["arguments"] else " none")]
    for a in r["arguments"]:
        typ = f": {a['type']}" if a["type"] else ""
        default = " (required)" if a["required"] else f" = {a['default']!r}"
        lines.append(f"    {a['name']}{typ}{default}")
    return "\n".join(lines)
