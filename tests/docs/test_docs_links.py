"""Every relative link and #anchor in README.md and docs/*.md resolves; every shell block is marked."""
from __future__ import annotations

from pathlib import Path

import pytest
from docs_blocks import REPO, anchors, blocks, links, pages, slug

PENDING: dict[str, str] = {}
"""Pages whose fix is on another branch: their cases xfail (not strict) until then, naming why."""


def _params():
    out = []
    for page in pages():
        name = str(page.relative_to(REPO))
        marks = [pytest.mark.xfail(reason=PENDING[name], strict=False)] if name in PENDING else []
        out.append(pytest.param(page, id=name, marks=marks))
    return out


PAGES = _params()


def broken_links(page: Path) -> list[str]:
    """The links of ``page`` that point at no file, or at no heading of the page they name."""
    bad = []
    for target in links(page):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        dest = (page.parent / path).resolve() if path else page
        if not dest.exists():
            bad.append(f"{target}: no such file")
        elif anchor and (dest.suffix != ".md" or anchor not in anchors(dest)):
            bad.append(f"{target}: no heading #{anchor} in {dest.relative_to(REPO)}")
        elif REPO not in dest.parents and dest != REPO:
            bad.append(f"{target}: outside the repository")
    return bad


@pytest.mark.parametrize("page", PAGES)
def test_every_relative_link_and_anchor_resolves(page):
    assert broken_links(page) == []


def test_a_broken_link_or_anchor_is_found(tmp_path, monkeypatch):
    page = tmp_path / "docs" / "page.md"
    page.parent.mkdir()
    (tmp_path / "docs" / "other.md").write_text("# Other page\n\n## Paired data (`data.paired: true`)\n")
    page.write_text("# Page\n\n[ok](other.md#paired-data-datapaired-true) [self](#page) [gone](missing.md)\n"
                    "[bad anchor](other.md#nowhere) [web](https://example.org/#x)\n\n"
                    "```bash\n[not a link](nowhere.md)\n```\n")
    monkeypatch.setattr("test_docs_links.REPO", tmp_path)
    assert broken_links(page) == ["missing.md: no such file", "other.md#nowhere: no heading #nowhere in docs/other.md"]


def test_slugs_are_githubs():
    assert slug("Speed: compile and the GPU path") == "speed-compile-and-the-gpu-path"
    assert slug("The authors' data sets: `cgx datasets`") == "the-authors-data-sets-cgx-datasets"
    assert slug("Grey, 16-bit and multi-band domains (`data.a`, `data.b`)") == \
        "grey-16-bit-and-multi-band-domains-dataa-datab"


def test_repeated_headings_get_numbered_anchors(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("# A\n## Tests\n## Tests\n```\n# not a heading\n```\n")
    assert anchors(page) == {"a", "tests", "tests-1"}


@pytest.mark.parametrize("page", PAGES)
def test_every_shell_block_is_marked_run_or_not_run_with_a_reason(page):
    unmarked = [b.where for b in blocks(page) if b.is_shell and b.mark not in ("run", "not run")]
    assert unmarked == [], ("mark each shell block on the line before its fence with <!-- docs: run --> or "
                            "<!-- docs: not run: REASON --> (docs/contributing.md)")
    assert all(b.reason for b in blocks(page) if b.mark == "not run"), "a not-run mark needs its reason"


def test_an_unmarked_shell_block_is_found(tmp_path):
    page = tmp_path / "p.md"
    page.write_text("<!-- docs: run -->\n```bash\ncgx --help\n```\n\n```sh\ncgx plugins\n```\n"
                    "<!-- docs: not run: needs a GPU -->\n```console\n$ nvidia-smi\n```\n```python\nx = 1\n```\n")
    got = [(b.lang, b.mark, b.reason) for b in blocks(page)]
    assert got == [("bash", "run", ""), ("sh", None, ""), ("console", "not run", "needs a GPU"), ("python", None, "")]
