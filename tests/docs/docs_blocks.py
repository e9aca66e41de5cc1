"""The fenced blocks and links of README.md and docs/*.md, for the runnable-docs and link tests.

The convention (docs/contributing.md, "Commands in the docs are tested"): the line right before every
shell block's fence (```sh, ```bash, ```console, ```shell) is one of

    <!-- docs: run -->                  tests/docs/test_docs_commands.py runs the block at tiny scale
    <!-- docs: not run: REASON -->      it needs what the tests do not have (a GPU, several nodes, ...)

and ``<!-- docs: file PATH -->`` before any block writes its text to PATH in the page's workspace
(before the blocks after it run), so a later run block can use it (a plugin module, a recipe).
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHELL = ("sh", "bash", "console", "shell")
MARK = re.compile(r"^<!--\s*docs:\s*(?P<what>run|not run:\s*(?P<reason>.*?)|file\s+(?P<path>\S+))\s*-->\s*$")
FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")


def pages() -> list[Path]:
    """README.md, then docs/*.md by name: the order the runnable-docs test runs them in."""
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


@dataclass
class Block:
    page: Path
    line: int            # 1-based line of the opening fence
    lang: str
    text: str
    mark: str | None     # "run", "not run", "file" or None
    reason: str = ""
    path: str = ""       # for "file"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL

    @property
    def where(self) -> str:
        page = self.page.relative_to(REPO) if self.page.is_relative_to(REPO) else self.page
        return f"{page}:{self.line}"


def blocks(page: Path) -> list[Block]:
    """Every fenced block of ``page`` with the docs mark on the line before its fence (if any)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, start = m["fence"], i
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(fence):
            j += 1
        mark = MARK.match(lines[start - 1].strip()) if start else None
        kind = reason = path = ""
        if mark:
            what = mark["what"]
            kind = "run" if what == "run" else "file" if mark["path"] else "not run"
            reason, path = (mark["reason"] or "").strip(), mark["path"] or ""
        out.append(Block(page, start + 1, m["lang"].lower(), "\n".join(lines[start + 1:j]) + "\n", kind or None,
                         reason, path))
        i = j + 1
    return out


def prose(page: Path) -> str:
    """The page without its fenced blocks (links and headings in code are not links and headings)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    out, fence = [], None
    for line in lines:
        m = FENCE.match(line)
        if fence is None and m:
            fence = m["fence"]
        elif fence is not None and line.strip().startswith(fence):
            fence = None
        elif fence is None:
            out.append(line)
    return "\n".join(out)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, markup and punctuation but - and _ dropped, spaces as -."""
    text = re.sub(r"`|\*\*|__|\[([^\]]*)\]\([^)]*\)", lambda m: m.group(1) or "", heading.strip()).lower()
    kept = "".join(c for c in text if c in " -_" or unicodedata.category(c)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of ``page``, with GitHub's -1, -2 for repeated headings."""
    seen: dict[str, int] = {}
    out = set()
    for line in prose(page).splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not m:
            continue
        base = slug(m[1])
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


LINK = re.compile(r"(?<!!)\[(?:[^\]\[]|\[[^\]]*\])*\]\((?P<target>[^)\s]+)(?:\s+\"[^\"]*\")?\)")
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<target>[^)\s]+)\)|<img\s[^>]*src=\"(?P<src>[^\"]+)\"")


def links(page: Path) -> list[str]:
    """Every link and image target in the page's prose (inline code removed)."""
    text = re.sub(r"`[^`\n]*`", "", prose(page))
    return [m["target"] for m in LINK.finditer(text)] + [m["target"] or m["src"] for m in IMAGE.finditer(text)]
