"""What a tracking-service logger (wandb, mlflow) keeps in the run folder: its run's id (and where that
run lives), and the last step it holds of each series, so that a resumed run continues the same run
without logging a step twice.

    RUN/wandb/cgx-run.json   {"id": "3f9x2k1a", "held": {"loss/D/A": 10, "checkpoint": 10, ...}}

A resumed run logs again every step after its checkpoint; a series' steps up to the one it holds are
skipped (resume is exact, so they hold the same values). Written atomically after each logged call."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any, Iterable


class RunRecord:
    def __init__(self, path: Path, data: dict[str, Any] | None = None) -> None:
        self.path = path
        self.data = data or {}
        held = self.data.get("held")
        self.held: dict[str, int] = ({k: v for k, v in held.items() if isinstance(v, int) and not isinstance(v, bool)}
                                     if isinstance(held, dict) else {})

    @classmethod
    def load(cls, path: Path) -> "RunRecord":
        """The record at ``path``; an empty one when there is none, or it is not a record (warned: a new
        run on the service is started)."""
        if not path.is_file():
            return cls(path)
        try:
            data = json.loads(path.read_text())
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError, RecursionError) as e:
            print(f"cgx: warning: {path} is not readable ({type(e).__name__}: {e}); a new run is started there",
                  file=sys.stderr)
            return cls(path)
        return cls(path, data)

    def get(self, key: str) -> str | None:
        """A field of the record (``id``, ``uri``, ...): a non-empty string, or None."""
        value = self.data.get(key)
        return value if isinstance(value, str) and value else None

    def start(self, **fields: Any) -> None:
        """A new run on the service: forget what the old one held."""
        self.data = {k: v for k, v in fields.items() if v is not None}
        self.held = {}
        self.save()

    def new(self, key: str, step: int) -> bool:
        """Whether ``step`` of series ``key`` is not held yet."""
        return step > self.held.get(key, -1)

    def note(self, keys: Iterable[str], step: int) -> None:
        for key in keys:
            self.held[key] = max(step, self.held.get(key, -1))
        self.save()

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        tmp.write_text(json.dumps({**self.data, "held": self.held}, indent=1, sort_keys=True))
        os.replace(tmp, self.path)
