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

_LIMITS = """
import resource, signal, sys
mem, fsize = int(sys.argv.pop(1)), int(sys.argv.pop(1))
resource.setrlimit(resource.RLIMIT_AS, (mem, mem))
resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
"""
_CLI = _LIMITS + """
from cgx.cli import main
sys.exit(main(sys.argv[1:]))
"""
TORCH_ADDRESS_SPACE = 3 << 30
"""Address space importing torch takes before anything is allocated (about 3.2 GB of mappings, little
of it memory): a child that imports torch gets this much on top of its cap."""


@dataclass
class Capped:
    rc: int
    out: str
    err: str


def run_cgx_capped(args: list[str], *, memory: int = 1 << 30, file_size: int = 64 << 20, timeout: float = 120,
                   cwd: Path | None = None) -> Capped:
    """``cgx ARGS`` in a child process with at most ``memory`` bytes of address space and ``file_size`` bytes
    per file written; a child that does not end in ``timeout`` seconds is killed (the test then fails)."""
    return run_python_capped(_CLI, args, memory=memory, file_size=file_size, timeout=timeout, cwd=cwd)


def run_python_capped(code: str, args: list[str], *, memory: int, file_size: int = 64 << 20, timeout: float = 120,
                      cwd: Path | None = None) -> Capped:
    """The Python ``code`` (``sys.argv[1:]`` = ``args``) in a child process under the same limits."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    code = code if code.startswith(_LIMITS) else _LIMITS + code
    p = subprocess.run([sys.executable, "-c", code, str(memory), str(file_size), *args], capture_output=True,
                       text=True, timeout=timeout, env=env, cwd=cwd)
    return Capped(p.returncode, p.stdout, p.stderr)


def disk_used(root: Path) -> int:
    """Bytes of disk the files under ``root`` take (blocks, so a sparse file counts as what it holds)."""
    return sum(p.lstat().st_blocks * 512 for p in Path(root).rglob("*"))
