"""One value coercion for everything a recipe sets: recipe keys (``cgx.config``) and plugin
arguments (``cgx.plugins.Registry``), by the annotation of the field or factory argument.

YAML reads ``2e-4`` (no dot) as a string: a ``float`` accepts numeric strings. Nothing else is
converted: ``"3"`` is not an ``int`` and ``1`` is not a ``bool``."""
from __future__ import annotations

import reprlib
import types
import typing
from pathlib import Path
from typing import Any, Literal


class CoercionError(ValueError):
    """The value does not fit the annotation. The message reads after the key's name ("must be a
    number, got 'x'"); ``index`` is where in a list it failed ("[1]"), empty for the value itself."""

    def __init__(self, message: str, index: str = "") -> None:
        super().__init__(message)
        self.index = index

    def at(self, key: str) -> str:
        """The whole sentence for ``key``: "optim.betas[1] must be a number, got 'x'"."""
        return f"{key}{self.index} {self}"


def coerce(tp: Any, value: Any) -> Any:
    """``value`` as annotation ``tp`` asks, or CoercionError. Annotations it does not know
    (classes, callables, ...) pass the value through: the component checks it."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if tp is Any or tp is typing.Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return coerce(arg, value)
            except CoercionError as e:
                errors.append(str(e).partition(", got")[0].removeprefix("must be "))
        suffix = " or null" if type(None) in args else ""
        raise CoercionError(f"must be {' or '.join(errors)}{suffix}, got {brief(value)}")
    if tp is type(None):
        if value is None:
            return None
        raise CoercionError(f"must be null, got {brief(value)}")
    if origin is Literal:
        if any(value == a and type(value) is type(a) for a in args):
            return value
        raise CoercionError(f"must be {describe(tp)}, got {brief(value)}")
    if origin in (list, tuple, typing.Sequence) or tp in (list, tuple):
        if not isinstance(value, (list, tuple)):
            raise CoercionError(f"must be a list, got {brief(value)}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise CoercionError(f"must be a list of {len(args)} values, got {brief(value)}")
            return tuple(_item(a, v, i) for i, (a, v) in enumerate(zip(args, value)))
        item = args[0] if args else Any
        out = [_item(item, v, i) for i, v in enumerate(value)]
        return tuple(out) if origin is tuple or tp is tuple else out
    exact = _EXACT.get(dict if origin is dict else tp)
    if exact is not None:
        what, fits = exact
        if fits(value):
            return value
        raise CoercionError(f"must be {what}, got {brief(value)}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise CoercionError(f"must be a number, got {brief(value)}")
    if tp is Path:
        if isinstance(value, (str, Path)):
            return Path(value)
        raise CoercionError(f"must be a path, got {brief(value)}")
    return value


_EXACT = {
    dict: ("a mapping", lambda v: isinstance(v, dict)),
    bool: ("true or false", lambda v: isinstance(v, bool)),
    int: ("an integer", lambda v: isinstance(v, int) and not isinstance(v, bool)),
    str: ("a string", lambda v: isinstance(v, str)),
}
"""Annotations a value must already fit exactly (no conversion): what to say, and the check."""


_SHOWN = reprlib.Repr()
_SHOWN.maxlevel, _SHOWN.maxdict, _SHOWN.maxlist, _SHOWN.maxtuple, _SHOWN.maxset = 2, 4, 4, 4, 4
_SHOWN.maxstring, _SHOWN.maxother, _SHOWN.maxlong = 120, 120, 60
SHOWN_CHARS = 200


def brief(value: Any) -> str:
    """``repr(value)`` cut short for an error message (a few levels, items and at most SHOWN_CHARS
    characters): a recipe value may be huge (YAML aliases repeating a section), and an error must
    stay one short line."""
    text = _SHOWN.repr(value)
    return text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS - 4] + " ..."


def _item(tp: Any, value: Any, index: int) -> Any:
    try:
        return coerce(tp, value)
    except CoercionError as e:
        raise CoercionError(str(e), f"[{index}]{e.index}") from None


def describe(tp: Any) -> str:
    """An annotation as a user reads it: ``float``, ``one of 'instance', 'batch'``, ``int | None``."""
    if typing.get_origin(tp) is Literal:
        return "one of " + ", ".join(str(a).lower() if isinstance(a, bool) else repr(a) for a in typing.get_args(tp))
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")
