"""One JSON record a line in ``RUN/log.jsonl``, image grids as PNG files in ``RUN/log_images/``: cheap to
read in a script, no package needed.

    {"step": 0, "time": 1764480000.1, "kind": "recipe", "recipe": {...}}
    {"step": 10, "time": ..., "kind": "scalars", "values": {"loss/D/A": 0.25, "lr/generators": 0.0002, ...}}
    {"step": 500, "time": ..., "kind": "image", "tag": "A->B->A (real, fake, reconstructed)",
     "file": "log_images/A-B-A_real_fake_reconstructed/step_00000500.png"}
    {"step": 1000, "time": ..., "kind": "event", "event": "checkpoint", "fields": {"path": "..."}}

    import json; records = [json.loads(line) for line in open("runs/NAME/log.jsonl")]

A scalar that is NaN or infinite is written as the string "nan", "inf" or "-inf" (JSON has no such numbers).

When a run resumes from step S, the file is first rewritten (atomically) without the records after S,
which the resumed run logs again; a run started at step 0 starts the file afresh. A torn last line
(a killed run) is dropped then."""
from __future__ import annotations

import json
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from cgx.plugins import hookimpl
from cgx.plugins.types import LogRun
from cgx.run_dir import step_name


def file_name(tag: str) -> str:
    """A tag as a file name: ``A->B->A (real, fake)`` -> ``A-B-A_real_fake``."""
    return re.sub(r"[^\w.-]+", "_", tag.replace("->", "-")).strip("_.") or "image"


def _number(value: float) -> float | str:
    """JSON has no NaN/inf: they are written as the strings "nan", "inf", "-inf"."""
    return value if math.isfinite(value) else str(value)


class JsonlLogger:
    def __init__(self) -> None:
        self.file = None

    def open(self, run: LogRun) -> None:
        path, self.images = run.folder.jsonl, run.folder.jsonl_images
        self.root = run.folder.root
        self.root.mkdir(parents=True, exist_ok=True)
        kept = _records_up_to(path, run.start_step) if run.start_step else []
        if path.exists() or kept:
            tmp = path.with_name(f".{path.name}.tmp")
            tmp.write_text("".join(kept))
            os.replace(tmp, path)
        self.file = open(path, "a")

    def _write(self, step: int, kind: str, **fields: Any) -> None:
        self.file.write(json.dumps({"step": step, "time": round(time.time(), 3), "kind": kind, **fields}) + "\n")
        self.file.flush()

    def recipe(self, config: Mapping[str, Any]) -> None:
        self._write(0, "recipe", recipe=dict(config))

    def scalars(self, step: int, values: Mapping[str, float]) -> None:
        self._write(step, "scalars", values={k: _number(float(v)) for k, v in values.items()})

    def image(self, step: int, tag: str, grid: np.ndarray) -> None:
        from PIL import Image

        path = self.images / file_name(tag) / f"{step_name(step)}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        Image.fromarray(grid).save(tmp, format="PNG")
        os.replace(tmp, path)
        self._write(step, "image", tag=tag, file=str(path.relative_to(self.root)))

    def event(self, step: int, name: str, fields: Mapping[str, Any]) -> None:
        self._write(step, "event", event=name, fields=dict(fields))

    def close(self) -> None:
        if self.file is not None:
            self.file.close()


def _records_up_to(path: Path, step: int) -> list[str]:
    """The lines of ``path`` whose record's step is at most ``step`` (torn or foreign lines dropped)."""
    if not path.is_file():
        return []
    kept = []
    with open(path, errors="replace") as f:
        for line in f:
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and isinstance(record.get("step"), int) and record["step"] <= step:
                kept.append(line if line.endswith("\n") else line + "\n")
    return kept


def build_jsonl() -> JsonlLogger:
    return JsonlLogger()


@hookimpl
def cgx_register_loggers(register):
    register("jsonl", build_jsonl)
