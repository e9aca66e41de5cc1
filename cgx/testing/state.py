"""Contract checks for the stateful kinds: image buffers and loggers."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from ..plugins.types import EVENTS, LogRun
from ..run_dir import RunDir
from .failures import check
from .networks import fits, images


def round_trip(state):
    """``state`` through ``torch.save`` and ``torch.load(weights_only=True)``, as a checkpoint takes it."""
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    try:
        return torch.load(buf, weights_only=True)
    except Exception as e:  # noqa: BLE001
        raise AssertionError(f"state_dict() does not load with weights_only=True (keep it to tensors, numbers and "
                             f"strings): {type(e).__name__}: {str(e).splitlines()[0]}") from None


def check_buffer(build: Callable, *, queries: int = 6) -> None:
    """An image buffer (``cgx.plugins.types.Buffer``): ``query(images)`` returns a batch of the same shape
    made of images it was given (now or before); its ``state_dict()`` survives a checkpoint
    (``weights_only``) and, loaded into a new buffer, makes it answer the next queries exactly as the
    first one does (exact resume)."""
    buffer = build()
    fits("buffer", buffer)
    seen: list[torch.Tensor] = []
    torch.manual_seed(0)
    for i in range(queries):
        batch = images(2, 3, 8, 8, seed=10 + i)
        seen += list(batch)
        out = buffer.query(batch)
        check(isinstance(out, torch.Tensor) and out.shape == batch.shape,
              f"query({tuple(batch.shape)}) returned {getattr(out, 'shape', type(out).__name__)}")
        for img in out:
            check(any(torch.equal(img, s) for s in seen), "query returned an image it was never given")
    state = round_trip(buffer.state_dict())
    again = build()
    again.load_state_dict(state)
    for i in range(3):
        batch = images(2, 3, 8, 8, seed=100 + i)
        torch.manual_seed(i)
        a = buffer.query(batch)
        torch.manual_seed(i)
        b = again.query(batch)
        check(torch.equal(a, b), "a buffer loaded from another's state_dict answers a query differently")
    if callable(getattr(buffer, "merge_states", None)) or callable(getattr(buffer, "load_share", None)):
        check_resizable_buffer(build, buffer)


def check_resizable_buffer(build: Callable, buffer) -> None:
    """The optional ``merge_states`` / ``load_share`` (``cgx.plugins.types.ResizableBuffer``): both or
    neither; the merged state survives a checkpoint; dealt to one rank twice with one seed, the two
    buffers answer alike (the rule is deterministic)."""
    check(callable(getattr(buffer, "merge_states", None)) and callable(getattr(buffer, "load_share", None)),
          "a buffer that carries over to another world size needs both merge_states and load_share")
    pool = round_trip(buffer.merge_states([round_trip(buffer.state_dict())]))
    a, b = build(), build()
    a.load_share(pool, 0, 1, 123)
    b.load_share(pool, 0, 1, 123)
    for i in range(3):
        batch = images(2, 3, 8, 8, seed=200 + i)
        torch.manual_seed(i)
        x = a.query(batch)
        torch.manual_seed(i)
        check(torch.equal(x, b.query(batch)), "two buffers given the same share with the same seed answer differently")


def check_logger(build: Callable, workdir: str | Path) -> None:
    """A logger (``cgx.plugins.types.Logger``): built without touching anything; then a launch as the
    engine makes one (``open``, ``recipe``, ``scalars``, ``image``, every event, ``close``) and a resumed
    launch (``open`` with ``start_step`` > 0), in the run folder ``workdir/run``; nothing else is written
    into ``workdir``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    before = set(workdir.iterdir())
    run = RunDir(workdir / "run")
    logger = build()
    fits("logger", logger)
    check(not run.root.exists(), f"the factory wrote {run.root} before open()")
    grid = np.zeros((8, 16, 3), dtype=np.uint8)
    for start, steps in ((0, (1, 2, 3)), (2, (3, 4))):
        logger = build() if start else logger
        logger.open(LogRun(run, "run", start, 4))
        if start == 0:
            logger.recipe({"train": {"steps": 4}, "model": {"generator": {"name": "resnet"}}})
        for step in steps:
            logger.scalars(step, {"loss/G/gan_AtoB": 0.5 + step, "lr/generators": 2e-4})
            logger.image(step, "A->B->A (real, fake, reconstructed)", grid)
        for name in EVENTS:
            fields = {"path": str(run.checkpoints / "step_00000004")} if name == "checkpoint" else \
                {"metric": "fid", "value": 1.5, "checkpoint": str(run.best)}
            logger.event(steps[-1], name, fields)
        logger.close()
    stray = sorted(set(workdir.iterdir()) - before - {run.root})
    check(not stray, f"the logger wrote outside the run folder: {', '.join(map(str, stray))}")
