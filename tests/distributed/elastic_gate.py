"""A test logger plugin (``gate``) that holds rank 0 at a step until the test lets it go on: the file
``hold`` beside the run folder holds a step number; ``scalars`` of any step at or past it waits while it
does. So a test can kill or add a torchrun agent while training is known to be at a given step."""
import time
from pathlib import Path

from cgx.plugins import hookimpl


class Gate:
    def __init__(self, hold: str) -> None:
        self.hold = Path(hold)

    def open(self, run) -> None: ...
    def recipe(self, config) -> None: ...
    def image(self, step, tag, grid) -> None: ...
    def event(self, step, name, fields) -> None: ...
    def close(self) -> None: ...

    def scalars(self, step, values) -> None:
        while True:
            try:
                at = int(self.hold.read_text() or "0")
            except (OSError, ValueError):
                return
            if step < at:
                return
            time.sleep(0.05)


def build_gate(hold: str) -> Gate:
    """hold: the file naming the step at which rank 0 waits."""
    return Gate(hold)


@hookimpl
def cgx_register_loggers(register):
    register("gate", build_gate)
