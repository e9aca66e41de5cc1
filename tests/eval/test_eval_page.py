"""The results page (``cgx.eval.page``): what it holds per method, escaping, atomic writes; and a real
``cgx eval`` page opened in headless Chromium, whose screenshot shows every image of the page (and,
with one image file removed, not that one)."""
from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import torch
from browser import CHROMIUM, REQUIRED, find, screenshot
from eval_fixtures import tiny_run, use_weights, weights  # noqa: F401 -- fixtures
from PIL import Image

from cgx.eval.page import Examples, write_page


class Parsed(HTMLParser):
    """Elements, image sources and the text of <pre> of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags, self.images, self.headers, self.pre, self._in = [], [], [], [], None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "img":
            self.images.append(dict(attrs))
        self._in = tag

    def handle_endtag(self, tag):
        self._in = None

    def handle_data(self, data):
        if self._in == "pre":
            self.pre.append(data)
        elif self._in == "th":
            self.headers.append(data)


def batch(n: int = 3, seed: int = 0, channels: int = 3, size: int = 8) -> torch.Tensor:
    return torch.rand(n, channels, size, size, generator=torch.Generator().manual_seed(seed)) * 2 - 1


RECORD = {"step": 7, "checkpoint": "runs/x/checkpoints/step_00000007", "translated_in": "fp32",
          "scores": {"AtoB": {"FID": 12.5, "KID_mean": 0.01, "KID_std": None, "cycle_L1": 0.2, "n_translated": 3,
                              "n_real": 3}},
          "kid": {"spread": {"AtoB": "none: every subset (of 3) holds all 3 translated images"}},
          "command": "cgx eval runs/x --a '<img src=x onerror=alert(1)>'"}
HOSTILE = "data:\n  root: </pre><script>alert(1)</script>&amp;\n"


def test_page_rows_escaping_and_relative_links(tmp_path):
    shown = Examples(n=2)
    shown.offer("AtoB", batch(3, 0), batch(3, 1), batch(3, 2))  # 3 offered, 2 kept
    shown.offer("AtoB", batch(1, 3), batch(1, 4), batch(1, 5))  # full already
    shown.offer("BtoA", batch(1, 6, channels=1), batch(1, 7, channels=1), None)  # grey, no reverse network (CUT)
    index = write_page(tmp_path / "eval" / "step_7" / "index.html", RECORD, shown, HOSTILE,
                       record_file=tmp_path / "eval" / "step_7.json")
    page = Parsed(index.read_text())
    assert "script" not in page.tags and all(set(i) == {"src", "width", "height", "alt"} for i in page.images)
    assert "".join(page.pre) == HOSTILE  # the recipe shown as it is, as text
    assert [i["src"] for i in page.images] == [
        "AtoB/000_input.png", "AtoB/000_translated.png", "AtoB/000_reconstructed.png",
        "AtoB/001_input.png", "AtoB/001_translated.png", "AtoB/001_reconstructed.png",
        "BtoA/000_input.png", "BtoA/000_translated.png"]
    assert all((index.parent / i["src"]).is_file() for i in page.images)
    assert sorted(p.name for p in (index.parent / "AtoB").iterdir()) == sorted(
        i["src"].split("/")[1] for i in page.images if i["src"].startswith("AtoB"))
    grey = np.asarray(Image.open(index.parent / "BtoA" / "000_input.png"))
    assert grey.shape == (8, 8, 3) and (grey[..., 0] == grey[..., 2]).all()  # shown as RGB, the channel repeated
    first = ((batch(3, 1)[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()
    assert (np.asarray(Image.open(index.parent / "AtoB" / "000_translated.png")) == first).all()
    text = index.read_text()
    assert 'href="../step_7.json"' in text and "none: every subset (of 3)" in text
    assert "&lt;img src=x onerror=alert(1)&gt;" in text


def test_paired_rows_and_big_images_become_thumbnails(tmp_path):
    shown = Examples(n=1, paired=True)
    shown.offer("AtoB", batch(1, 0, size=600), batch(1, 1, size=600), batch(1, 2, size=600))
    index = write_page(tmp_path / "p" / "index.html", RECORD, shown, None)
    page = Parsed(index.read_text())
    at = page.headers.index("input")
    assert page.headers[at:at + 3] == ["input", "translated", "ground truth"]
    assert [i["src"] for i in page.images][-1] == "AtoB/000_ground_truth.png"
    assert Image.open(index.parent / "AtoB" / "000_ground_truth.png").size == (256, 256)


def test_a_failed_write_leaves_the_previous_page_whole(tmp_path, monkeypatch):
    shown = Examples(n=1)
    shown.offer("AtoB", batch(1, 0), batch(1, 1), batch(1, 2))
    index = write_page(tmp_path / "eval" / "step_7" / "index.html", RECORD, shown, "a: 1\n")
    before = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    saved = []

    def disk_full(self, path, *args, **kwargs):
        saved.append(path)
        if len(saved) == 2:
            raise OSError(28, "No space left on device")
        return original(self, path, *args, **kwargs)

    original = Image.Image.save
    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(OSError):
        write_page(index, {**RECORD, "step": 8}, shown, "a: 2\n")
    after = {p.relative_to(tmp_path): p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    assert after == before  # the old page as it was, no half page, no temporary folder left
    assert sorted(p.name for p in (tmp_path / "eval").iterdir()) == ["step_7"]


@pytest.mark.multiprocess  # starts Chromium
@pytest.mark.skipif(CHROMIUM is None and not REQUIRED, reason="no chromium (apt-get install chromium; .ci/run does)")
def test_cgx_eval_page_shows_the_scored_images_in_a_browser(tiny_run, demo_data, use_weights, tmp_path, capsys):
    from cgx.cli import main as cli_main
    from cgx.grid import shown_image
    from cgx.infer import load_generators, translate_batch

    assert CHROMIUM is not None, "CGX_REQUIRE_CHROMIUM=1 but no chromium on PATH"
    assert cli_main(["eval", str(tiny_run), "--a", str(demo_data / "testA"), "--b", str(demo_data / "testB"),
                     "--no-progress"]) == 0
    out = capsys.readouterr().out
    record = json.loads((tiny_run / "eval" / "step_00000002.json").read_text())
    assert record["translated_in"] == "fp32" and record["page"] == "step_00000002/index.html"
    assert record["scores"]["AtoB"]["KID_std"] is None and "± 0.0" not in out  # 2 images: no spread
    assert "AtoB: KID spread: none: every subset (of 2) holds all 2 translated images and all 2 real" in out
    page = tiny_run / "eval" / "step_00000002"
    assert f"cgx: results page written to {page / 'index.html'}" in out
    # the translated image shown is the one scored: G's fp32 translation of the first test image
    gens = load_generators(tiny_run)
    x = torch.from_numpy(np.array(Image.open(sorted((demo_data / "testA").iterdir())[0]).convert("RGB")))
    x = x.permute(2, 0, 1)[None].float() / 127.5 - 1
    expected = np.asarray(shown_image(translate_batch(gens.G, x)[0]))
    assert (np.asarray(Image.open(page / "AtoB" / "000_translated.png")) == expected).all()

    files = sorted(page.rglob("*.png"))
    assert len(files) == 12  # 2 rows of input | translated | reconstructed, both directions
    shot = screenshot(page / "index.html", tmp_path / "page.png")
    for f in files:  # every image drawn, pixel for pixel, exactly once
        assert len(find(shot, np.asarray(Image.open(f).convert("RGB")))) == 1, f.relative_to(page)
    gone = page / "AtoB" / "000_translated.png"
    image = np.asarray(Image.open(gone).convert("RGB"))
    gone.unlink()  # negative control: a missing file is a broken image, not drawn
    broken = screenshot(page / "index.html", tmp_path / "broken.png")
    assert find(broken, image) == [] and not np.array_equal(broken, shot)
    assert all(len(find(broken, np.asarray(Image.open(f).convert("RGB")))) == 1 for f in files if f != gone)


def test_n_band_rows_are_shown_by_the_scored_bands_or_the_first_three():
    from cgx.grid import shown_image

    x = batch(1, 9, channels=5)
    by_bands, first_three = Examples(n=1, bands=[4, 2, 0]), Examples(n=1)
    for shown in (by_bands, first_three):
        shown.offer("AtoB", x, x, None)
    u8 = lambda t: ((t.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()  # noqa: E731
    assert (np.asarray(by_bands.rows["AtoB"][0][1]) == u8(x[0, [4, 2, 0]])).all()
    assert (np.asarray(first_three.rows["AtoB"][0][0]) == u8(x[0, :3])).all()
    assert np.array_equal(np.asarray(shown_image(x[0])), u8(x[0, :3]))  # as cgx grid shows them
