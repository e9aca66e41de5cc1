"""docs/plugins.md's complete method runs as written: the ```python block that registers it is taken
from the page, saved as a module, and trained through the public method check (cgx.testing); it is also
what ``cgx plugins new method refiner`` writes, so the page and the template cannot drift apart. Every
shell block of the page is marked run or not run (the runnable-docs convention)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from cgx.plugins import scaffold
from cgx.testing import check_method

PAGE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def blocks(language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```$", PAGE.read_text(), flags=re.S | re.M)


def the_method() -> str:
    [code] = [b for b in blocks("python") if "def cgx_register_methods" in b]
    return code


def test_the_method_is_what_plugins_new_writes():
    assert the_method() == scaffold.render("method", "refiner")["cgx_refiner.py"]


@pytest.mark.slow
def test_the_method_on_the_page_trains_resumes_and_translates(tmp_path):
    module = tmp_path / "refiner.py"
    module.write_text(the_method())
    check_method({"name": "refiner", "weight": 0.5}, tmp_path / "check", plugins=[str(module)])


def test_every_shell_block_is_marked():
    lines = PAGE.read_text().splitlines()
    for i, line in enumerate(lines):
        if re.fullmatch(r"```(sh|bash|console|shell)", line):
            assert i > 0 and re.fullmatch(r"<!-- docs: (run|not run: .+) -->", lines[i - 1]), \
                f"docs/plugins.md:{i + 1}: a shell block without <!-- docs: run --> or <!-- docs: not run: REASON -->"
