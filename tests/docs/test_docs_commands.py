"""Runnable docs: every shell block of README.md and docs/*.md marked ``<!-- docs: run -->`` runs here.

The blocks run as written, at tiny scale, with ``bash -euo pipefail`` in one workspace (a temporary
folder holding a copy of the checkout's ``recipes/`` and ``plugins/examples/``), README.md first and
then docs/*.md by name, so a page may use what the README's quickstart made (``data/demo``,
``data/demo_shards``, ``runs/demo``). The one change to a command: a training command
(``python -m cgx.run``, ``torchrun ... -m cgx.run``, ``cgx train``) gets ``TINY`` appended, later
overrides winning, so it trains 2 steps of 32 px crops. Each block's wall time is printed
(``pytest -s``). The convention is in docs/contributing.md.
"""
from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from docs_blocks import REPO, Block, blocks, pages

TINY = ("train.steps=2", "train.ckpt_every=2", "train.log_every=1", "train.image_every=0", "train.progress=false",
        "data.workers=0", "eval.every=0")
"""Appended to every training command of a run block: 2 steps, no loader processes, no evaluation during
training. Image sizes stay the recipe's (the demo recipes' are small; a U-Net needs its own multiple)."""
TRAINING = re.compile(r"(?:^|[\s;&|(])(?:-m\s+cgx\.run|cgx\s+train)(?=\s|$)")
BLOCK_TIMEOUT_S = 600


def logical_lines(block: Block) -> list[str]:
    """The block's commands: ``\\``-continued lines joined; in a console block only ``$ `` lines (and
    their continuations) are commands, the rest is output."""
    out: list[str] = []
    pending = None
    for raw in block.text.splitlines():
        line = raw.rstrip()
        if pending is None:
            if block.lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            pending = ""
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = None
    if pending:
        out.append(pending)
    return out


def command_end(line: str, start: int) -> int:
    """Where the simple command that begins before ``start`` ends: the first ``;``, ``&``, ``|``, ``<``, ``>``
    or trailing comment (``#`` after a blank) outside quotes from ``start`` on, else ``len(line)``."""
    quote = None
    for i in range(start, len(line)):
        c = line[i]
        if quote:
            if c == quote:
                quote = None
        elif c in "'\"":
            quote = c
        elif c in ";&|<>" or (c == "#" and line[i - 1] in " \t"):
            return i
    return len(line)


def tiny(line: str) -> str:
    """``line`` with TINY appended to each training command in it (before what follows that command:
    ``|| ...``, a pipe, a redirection, a comment); any other line as it is."""
    out, pos = [], 0
    for m in TRAINING.finditer(line):
        if m.start() < pos:
            continue
        end = command_end(line, m.end())
        command = line[pos:end].rstrip()
        gap = line[pos + len(command):end] if end < len(line) else ""
        out.append(f"{command} {' '.join(TINY)}{gap}")
        pos = end
    return "".join(out) + line[pos:] if out else line


def script(block: Block) -> str:
    return "set -euo pipefail\n" + "\n".join(tiny(line) for line in logical_lines(block)) + "\n"


# --- unit tests of the rewriting (no processes) ---------------------------------------------------


def test_training_commands_get_the_tiny_overrides_before_their_comment():
    tail = " ".join(TINY)
    assert tiny("python -m cgx.run recipes/demo.yaml train.steps=200  # one process") == \
        f"python -m cgx.run recipes/demo.yaml train.steps=200 {tail}  # one process"
    assert tiny("torchrun --standalone --nproc_per_node=2 -m cgx.run recipes/demo.yaml") == \
        f"torchrun --standalone --nproc_per_node=2 -m cgx.run recipes/demo.yaml {tail}"
    assert tiny("cgx train r.yaml data.shards_a='d/trainA-{000000..000003}.tar'") == \
        f"cgx train r.yaml data.shards_a='d/trainA-{{000000..000003}}.tar' {tail}"
    assert tiny('python -m cgx.run r.yaml || echo "exit code $?"') == \
        f'python -m cgx.run r.yaml {tail} || echo "exit code $?"'
    assert tiny("cgx train a.yaml > log && cgx train b.yaml") == f"cgx train a.yaml {tail} > log && cgx train b.yaml {tail}"
    for other in ("cgx translate runs/demo data/demo/testA out/", "cgx eval runs/demo  # train.steps",
                  "python -m cgx.recipe_reference", "echo '# -m cgx.run'", "torchrun -m cgx.cli eval runs/x"):
        assert tiny(other) == other


def test_continued_lines_are_one_command_and_console_output_is_skipped(tmp_path):
    b = Block(tmp_path / "p.md", 1, "console", "$ cgx train r.yaml \\\n    train.seed=1\noutput line\n$ ls\n", "run")
    assert logical_lines(b) == ["cgx train r.yaml      train.seed=1", "ls"]
    b = Block(tmp_path / "p.md", 1, "bash", "cgx train r.yaml \\\n  x=1   # c\n", "run")
    assert script(b) == f"set -euo pipefail\ncgx train r.yaml    x=1 {' '.join(TINY)}   # c\n"


# --- the runnable blocks ---------------------------------------------------------------------------


class Workspace:
    """One folder for every page's blocks, README.md's run first (its products are the others' inputs)."""

    def __init__(self, root: Path, first: Path | None = REPO / "README.md"):
        self.root, self.first = root, first
        shutil.copytree(REPO / "recipes", root / "recipes")
        if (REPO / "plugins" / "examples").is_dir():
            shutil.copytree(REPO / "plugins" / "examples", root / "plugins" / "examples")
        self.env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.done: dict[Path, list[str]] = {}

    def run_page(self, page: Path) -> list[str]:
        """Run the page's blocks in order (once); the failures, each with the block's place and output."""
        if page in self.done:
            return self.done[page]
        if self.first is not None and page != self.first:
            self.run_page(self.first)
        failures: list[str] = []
        for b in blocks(page):
            if b.mark == "file":
                dest = self.root / b.path
                assert not Path(b.path).is_absolute() and ".." not in Path(b.path).parts, \
                    f"{b.where}: docs: file {b.path} must be a path inside the workspace"
                dest.parent.mkdir(parents=True, exist_ok=True)
                dest.write_text(b.text)
            elif b.mark == "run" and b.is_shell:
                start, cpu = time.monotonic(), _children_cpu()
                try:
                    proc = subprocess.run(["bash", "-c", script(b)], cwd=self.root, env=self.env, text=True,
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=BLOCK_TIMEOUT_S)
                    rc, output = proc.returncode, proc.stdout
                except subprocess.TimeoutExpired as e:
                    out = e.stdout or ""
                    rc, output = "timeout", out if isinstance(out, str) else out.decode(errors="replace")
                print(f"docs block {b.where}: {time.monotonic() - start:.1f} s wall, "
                      f"{_children_cpu() - cpu:.1f} s CPU (rc {rc})")
                if rc != 0:
                    failures.append(f"{b.where} exited {rc}:\n{script(b)}--- output (last 3000 chars) ---\n"
                                    f"{output[-3000:]}")
        self.done[page] = failures
        return failures


def _children_cpu() -> float:
    """CPU seconds (user + system) of the finished child processes so far: a block's cost that another
    job on the machine hardly changes, unlike its wall time."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Workspace:
    return Workspace(tmp_path_factory.mktemp("docs_workspace"))


RUN_PAGES = [p for p in pages() if any(b.mark == "run" and b.is_shell for b in blocks(p))]


@pytest.mark.multiprocess
@pytest.mark.slow
@pytest.mark.parametrize("page", RUN_PAGES, ids=lambda p: str(p.relative_to(REPO)))
def test_the_pages_run_blocks_run(page, workspace):
    failures = workspace.run_page(page)
    assert not failures, "\n\n".join(failures)


@pytest.mark.multiprocess
def test_file_blocks_are_written_for_later_run_blocks_and_failures_name_the_block(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("<!-- docs: file sub/hello.txt -->\n```text\nhello docs\n```\n\n"
                    "<!-- docs: run -->\n```bash\ngrep -q 'hello docs' sub/hello.txt\n```\n\n"
                    "<!-- docs: not run: needs a GPU -->\n```bash\nexit 9\n```\n\n"
                    "<!-- docs: run -->\n```bash\ntrue\nfalse\necho never\n```\n")
    (tmp_path / "ws").mkdir()
    failures = Workspace(tmp_path / "ws" / "w", first=None).run_page(page)
    assert len(failures) == 1 and failures[0].startswith(f"{page}:17 exited 1"), failures
    assert "never" not in failures[0].split("--- output")[1]  # set -e: the block stops at its first failure
