"""What a resumed run's recipe changed against the one its checkpoint was trained with, in one line.

A resume with other keys is allowed (more steps, another log interval, another image size): the
run says which keys differ, once, so that a typo or a forgotten override shows in the log instead of
silently making another run."""
from __future__ import annotations

from ..safe_text import shown

SHOWN = 8
"""Keys listed by name; more are counted."""


def _flat(value, key: str = "") -> dict[str, object]:
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            out.update(_flat(v, f"{key}.{k}" if key else str(k)))
        return out
    return {key: value}


def recipe_changes(saved: dict | None, now: dict) -> list[str]:
    """``key old -> new`` for each leaf key whose value differs (a key one side lacks reads as unset)."""
    if not isinstance(saved, dict):
        return []
    before, after = _flat(saved), _flat(now)
    out = []
    for key in sorted(before.keys() | after.keys()):
        old, new = before.get(key, "unset"), after.get(key, "unset")
        if old != new:
            out.append(f"{shown(key)} {shown(old)} -> {shown(new)}")
    return out


def describe_changes(changes: list[str], checkpoint: str) -> str | None:
    """One log line, or None when nothing changed."""
    if not changes:
        return None
    listed = ", ".join(changes[:SHOWN]) + (f" and {len(changes) - SHOWN} more" if len(changes) > SHOWN else "")
    return f"cgx: the recipe differs from the one {checkpoint} was trained with: {listed}"
