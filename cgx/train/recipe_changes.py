"""What a resumed run's recipe changed against the one its checkpoint was trained with, in one line.

A resume with other keys is allowed (more steps, another log interval, another image size): the
run says which keys differ, once, so that a typo or a forgotten override shows in the log instead of
silently making another run. The checkpoint's recipe may come from someone else's run folder: its
sections are walked at most ``MAX_NODES`` deep in total (a pickle may share one dict many times over,
so a small file can stand for an enormous tree), and each value is shown cut short and escaped."""
from __future__ import annotations

from ..coerce import brief
from ..safe_text import shown

SHOWN = 8
"""Keys listed by name; more are counted."""

MAX_NODES = 100_000
"""Sections and values compared at most (a real recipe has a few hundred)."""


class _TooLarge(Exception):
    pass


def _flat(value, key: str, out: dict[str, object], budget: list[int]) -> None:
    budget[0] -= 1
    if budget[0] < 0:
        raise _TooLarge
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(v, f"{key}.{k}" if key else str(k), out, budget)
    else:
        out[key] = value


def _value(value: object) -> str:
    return shown(value if isinstance(value, (str, int, float, bool)) and len(str(value)) <= 80 else brief(value))


def recipe_changes(saved: dict | None, now: dict) -> list[str]:
    """``key old -> new`` for each leaf key whose value differs (a key one side lacks reads as unset)."""
    if not isinstance(saved, dict):
        return []
    before, after, budget = {}, {}, [MAX_NODES]
    try:
        _flat(saved, "", before, budget)
        _flat(now, "", after, budget)
    except (_TooLarge, RecursionError):
        return [f"(not compared: the checkpoint's recipe has over {MAX_NODES:,} entries)"]
    out = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, "unset"), after.get(key, "unset")
        if old != new:
            out.append(f"{shown(brief(key) if len(key) > 80 else key)} {_value(old)} -> {_value(new)}")
    return out


def describe_changes(changes: list[str], checkpoint: str) -> str | None:
    """One log line, or None when nothing changed."""
    if not changes:
        return None
    listed = ", ".join(changes[:SHOWN]) + (f" and {len(changes) - SHOWN} more" if len(changes) > SHOWN else "")
    return f"cgx: the recipe differs from the one {checkpoint} was trained with: {listed}"
