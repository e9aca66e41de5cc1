"""Run a cgx command in a child process with hard limits, so that a regression in a test of a
memory or disk bomb fails the test instead of exhausting the machine (it is shared).

``RLIMIT_AS`` caps the address space: an allocation beyond it is a MemoryError in the child.
``RLIMIT_FSIZE`` caps every file the child writes: a write beyond it fails with EFBIG (SIGXFSZ is
ignored, so it is an OSError, not a kill). Neither touches the test process."""
from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

_CHILD = """
import resource, signal, sys
mem, fsize = int(sys.argv[1]), int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
from cgx.cli import main
sys.exit(main(sys.argv[3:]))
"""


@dataclass
class Capped:
    rc: int
    out: str
    err: str


def run_cgx_capped(args: list[str], *, memory: int = 1 << 30, file_size: int = 64 << 20, timeout: float = 120,
                   cwd: Path | None = None) -> Capped:
    """``cgx ARGS`` in a child process with at most ``memory`` bytes of address space and ``file_size`` bytes
    per file written; a child that does not end in ``timeout`` seconds is killed (the test then fails)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    p = subprocess.run([sys.executable, "-c", _CHILD, str(memory), str(file_size), *args], capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=cwd)
    return Capped(p.returncode, p.stdout, p.stderr)


def disk_used(root: Path) -> int:
    """Bytes of disk the files under ``root`` take (blocks, so a sparse file counts as what it holds)."""
    return sum(p.lstat().st_blocks * 512 for p in Path(root).rglob("*"))
