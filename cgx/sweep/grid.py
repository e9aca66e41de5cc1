"""A sweep's points: ``--grid 'KEY=v1,v2'`` options (and ``--seeds``) expanded into every combination.

A grid option is one recipe key and its values, split on the commas outside brackets and quotes, so
a list value stays one value (``optim.betas=[0.5,0.999],[0.0,0.99]`` is two). Each value is given to
the recipe as an override ``KEY=VALUE``, exactly as ``cgx train RECIPE KEY=VALUE`` would take it.
The points are the cartesian product of the grids, in the order given (the last grid varies
fastest); ``--seeds 1,2,3`` is ``--grid train.seed=1,2,3`` put last.

A point's name is its overrides, ``key=value`` joined by ``,`` (``method.name=cut,train.seed=1``),
each character outside ``[A-Za-z0-9._=+-]`` written as ``%XX`` (its UTF-8 bytes): a file name on
any file system, the same for the same overrides, never holding ``/``. Names longer than
``MAX_NAME`` keep their start and end with a hash of the whole. A point's configuration is its
name without ``train.seed``: the points of one configuration are its seeds.
"""
from __future__ import annotations

import hashlib
import itertools
import re
from dataclasses import dataclass
from typing import Sequence

from ..errors import UsageError
from ..safe_text import shown

SEED_KEY = "train.seed"
OWNED_KEYS = ("train.run_dir",)
"""Keys the sweep sets itself for every point (each point's run folder is SWEEP/runs/NAME)."""
MAX_NAME = 120
SAFE = re.compile(r"[A-Za-z0-9._=+-]")
KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
BASE_NAME = "base"
"""The name of the one point of a sweep without grids (the recipe as it is)."""


@dataclass(frozen=True)
class Grid:
    key: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Point:
    """One run of the sweep: its overrides, in grid order."""

    overrides: tuple[tuple[str, str], ...]

    @property
    def args(self) -> list[str]:
        """The overrides as ``cgx train`` takes them: ``KEY=VALUE``."""
        return [f"{k}={v}" for k, v in self.overrides]

    @property
    def name(self) -> str:
        return point_name(self.overrides)

    @property
    def config(self) -> tuple[tuple[str, str], ...]:
        """The overrides but the seed: what the points of one configuration share."""
        return tuple((k, v) for k, v in self.overrides if k != SEED_KEY)

    @property
    def config_name(self) -> str:
        return point_name(self.config)

    @property
    def seed(self) -> str | None:
        return dict(self.overrides).get(SEED_KEY)


def split_values(text: str) -> list[str]:
    """``a,[1,2],'x,y'`` -> ``["a", "[1,2]", "'x,y'"]``: commas inside brackets, braces or quotes
    belong to the value."""
    values, depth, quote, current = [], 0, None, []
    for ch in text:
        if quote:
            quote = None if ch == quote else quote
        elif ch in "'\"":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            values.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    values.append("".join(current).strip())
    return values


def parse_grid(text: str, option: str = "--grid") -> Grid:
    """``KEY=v1,v2`` -> Grid; UsageError naming the option for one that is not of that form."""
    example = "e.g. --grid 'method.name=cyclegan,cut'"
    if "=" not in text:
        raise UsageError(f"{option} {shown(text)!r} is not of the form KEY=v1,v2 ({example})")
    key, _, rest = text.partition("=")
    key = key.strip()
    if not KEY.fullmatch(key):
        raise UsageError(f"{option} {shown(text)!r}: {shown(key)!r} is not a recipe key (dotted names of letters, "
                         f"digits and _, e.g. optim.lr; cgx recipes keys lists them)")
    if key in OWNED_KEYS:
        raise UsageError(f"{option} {key}: the sweep sets {key} itself (each point's run folder is SWEEP/runs/NAME); "
                         f"grid over other recipe keys")
    values = split_values(rest)
    if any(not v for v in values):
        raise UsageError(f"{option} {key}: an empty value in {shown(rest)!r} (values are separated by commas: "
                         f"{key}=v1,v2)")
    if len(set(values)) != len(values):
        twice = next(v for v in values if values.count(v) > 1)
        raise UsageError(f"{option} {key}: the value {shown(twice)!r} is given twice")
    return Grid(key, tuple(values))


def parse_seeds(text: str) -> Grid:
    """``--seeds 1,2,3`` -> the grid of ``train.seed``; UsageError for a value that is not a whole number."""
    values = split_values(text)
    for v in values:
        if not re.fullmatch(r"-?\d+", v):
            raise UsageError(f"--seeds {shown(text)!r}: {shown(v)!r} is not a whole number (e.g. --seeds 1,2,3)")
    return parse_grid(f"{SEED_KEY}={text}", "--seeds")


def expand(grids: Sequence[Grid]) -> list[Point]:
    """Every combination of the grids' values (the last grid varying fastest); UsageError for a key given
    in two grids. No grids: the one point of the recipe as it is."""
    seen: set[str] = set()
    for g in grids:
        if g.key in seen:
            raise UsageError(f"--grid {g.key} is given twice (with --seeds: train.seed); give its values in one "
                             f"--grid {g.key}=v1,v2")
        seen.add(g.key)
    combos = itertools.product(*[[(g.key, v) for v in g.values] for g in grids])
    return [Point(tuple(c)) for c in combos]


def escape(text: str) -> str:
    """``text`` with every character outside ``SAFE`` as ``%XX`` of its UTF-8 bytes."""
    return "".join(ch if SAFE.fullmatch(ch) else "".join(f"%{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
                   for ch in text)


def point_name(overrides: Sequence[tuple[str, str]]) -> str:
    """A file name for ``overrides`` (see the module docstring); ``base`` for none."""
    if not overrides:
        return BASE_NAME
    name = ",".join(f"{escape(k)}={escape(v)}" for k, v in overrides)
    if len(name) > MAX_NAME:
        digest = hashlib.sha256(name.encode()).hexdigest()[:12]
        name = f"{name[:MAX_NAME // 2]}~{digest}~{name[-(MAX_NAME // 2 - 28):]}"
    return name

