"""Case 5 of issue 27: names from outside are printed escaped. A file, folder or archive member name
holding ANSI/OSC sequences (cursor moves, erase line, window title) or a newline (a forged line of
cgx's own output) reaches the terminal as ``\\x1b``, ``\\n``: in fetch's layout summary, the skip
warnings of translate, shards and training, and the one-line errors. A scan of cgx's source keeps
every message that prints a path-like name going through ``cgx.safe_text.shown``."""
from __future__ import annotations

import ast
import logging
import random
import zipfile
from pathlib import Path

import pytest
from faultkit import one_line_error, write_noise

import cgx
from cgx.cli import main as cli_main
from cgx.config import DataConfig
from cgx.data import build_source
from cgx.data.demo import render
from cgx.safe_text import shown

HOSTILE = "x\x1b]0;pwned\x07\x1b[2K\r\ncgx: forged line\u202e\x9b1m"
"""Sets the window title, erases the line, starts a line of its own, turns text around (bidi), CSI in C1."""
RAW = ("\x1b", "\x07", "\x9b", "\u202e", "\ncgx: forged", "\r")
SHOWN = "x\\x1b]0;pwned\\x07\\x1b[2K\\r\\ncgx: forged line\\u202e\\x9b1m"


def assert_escaped(text: str) -> None:
    for raw in RAW:
        assert raw not in text, (raw, text)
    assert SHOWN in text, text


def test_shown_escapes_what_a_terminal_obeys_and_keeps_printable_text():
    assert shown(HOSTILE) == SHOWN
    assert shown(SHOWN) == SHOWN  # idempotent: a message shown twice reads the same
    assert shown("Zürich/東京/🦓 photo.jpg") == "Zürich/東京/🦓 photo.jpg"
    assert shown("a\tb\x00c\x7f\u2028d") == "a\\tb\\x00c\\x7f\\u2028d"
    assert shown(Path("bad\udcffname.jpg")) == "bad\\xffname.jpg"  # a non-UTF-8 byte in a file name
    assert shown(12) == "12"


def test_fetch_layout_summary_escapes_folder_names(tmp_path, capsys):
    mirror = tmp_path / "mirror" / "cyclegan" / "datasets"
    mirror.mkdir(parents=True)
    with zipfile.ZipFile(mirror / "horse2zebra.zip", "w") as z:
        z.writestr("horse2zebra/trainA/1.jpg", b"a")
        z.writestr(f"horse2zebra/{HOSTILE}/1.jpg", b"b")
    assert cli_main(["datasets", "fetch", "horse2zebra", "--to", str(tmp_path), "--url",
                     (tmp_path / "mirror").as_uri(), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert_escaped(out)
    assert (tmp_path / "horse2zebra" / HOSTILE / "1.jpg").read_bytes() == b"b"  # the folder is unpacked as named


def test_shards_skip_report_escapes_file_names(tmp_path, capsys):
    write_noise(tmp_path / "src" / "good.png", 0)
    (tmp_path / "src" / f"{HOSTILE}.png").write_bytes(b"not an image")
    assert cli_main(["shards", str(tmp_path / "src"), str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr()
    assert "skipped 1 unreadable images" in out.out
    assert_escaped(out.out + out.err)


def test_training_skip_warning_escapes_file_names(tmp_path, caplog):
    for d in "AB":
        (tmp_path / f"train{d}").mkdir()
        for i in range(2):
            render(d, random.Random(f"{d}{i}"), 32).save(tmp_path / f"train{d}" / f"{d.lower()}{i}.png")
    (tmp_path / "trainA" / f"{HOSTILE}.png").write_bytes(b"")
    c = DataConfig(root=str(tmp_path), preprocess="none", crop_size=32, load_size=32, flip=False, workers=0)
    with caplog.at_level(logging.WARNING, logger="cgx.data"):
        batches = list(build_source(c, batch=1, seed=0).batches(0, 3))
    assert sum(int(b["skipped"]) for b in batches) == 1
    assert "the file is empty" in caplog.text
    assert_escaped(caplog.text)


def test_translate_skip_warnings_escape_file_names(tiny_run, tmp_path, capsys, caplog):
    write_noise(tmp_path / "in" / "good.png", 0)
    (tmp_path / "in" / f"{HOSTILE}.png").write_bytes(b"")
    with caplog.at_level(logging.WARNING):
        assert cli_main(["translate", str(tiny_run), str(tmp_path / "in"), str(tmp_path / "out"), "--no-progress",
                         "--device", "cpu"]) == 0
    out = capsys.readouterr()
    assert "skipped 1 unreadable images" in out.err
    assert_escaped(out.err)
    assert_escaped(caplog.text)


def test_one_line_errors_escape_the_names_they_quote(tmp_path, capsys):
    src = tmp_path / HOSTILE
    assert cli_main(["shards", str(src), str(tmp_path / "out")]) == 2
    err = one_line_error(capsys, "not found")
    assert_escaped(err)


# --- every message that prints a path-like name goes through shown ---------------------------------------

CGX = Path(cgx.__file__).parent
PATHLIKE = {"path", "p", "f", "name", "file", "folder", "target", "src", "out", "archive", "member", "root", "dest",
            "part", "where", "error", "err", "e", "why", "message", "msg", "directory", "filename", "key", "value"}
"""Variables that hold a name from outside (or a message quoting one) wherever cgx uses them."""
PATHLIKE_ATTRS = ("name", "path", "root", "parent", "target", "archive", "filename", "stem", "dir", "folder")
LOGGING = {"warning", "warn", "info", "error", "debug", "exception", "critical"}
ALLOWED: set[tuple[str, str]] = set()
"""(file, expression) printed raw on purpose; empty: nothing is."""


def _pathlike(expr: ast.expr) -> bool:
    if isinstance(expr, ast.Name):
        return expr.id in PATHLIKE
    if isinstance(expr, ast.Attribute):
        return expr.attr.endswith(PATHLIKE_ATTRS)
    if isinstance(expr, ast.Subscript):
        return _pathlike(expr.value)
    return False


def _printed(node: ast.AST) -> list[ast.expr]:
    """The arguments of ``node`` that reach a terminal: print(), a logger's or warnings' call, a file's or
    progress bar's write(), and the ``lines`` a report builds to print."""
    if isinstance(node, ast.Call):
        fn = node.func
        if isinstance(fn, ast.Name) and fn.id == "print":
            return node.args
        if isinstance(fn, ast.Attribute) and fn.attr in LOGGING | {"write"}:
            return node.args
        if isinstance(fn, ast.Attribute) and fn.attr in ("append", "extend") and getattr(fn.value, "id", "") == "lines":
            return node.args
    if isinstance(node, ast.AugAssign) and getattr(node.target, "id", "") == "lines":
        return [node.value]
    return []


def raw_names(source: str) -> list[tuple[int, str]]:
    """(line, expression) of each path-like name interpolated into a printed message without ``shown``
    (an f-string field, or a %-argument of a logging call); ``!r`` counts as escaped (repr escapes)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        args = _printed(node)
        for i, arg in enumerate(args):
            for sub in ast.walk(arg):
                if isinstance(sub, ast.FormattedValue) and sub.conversion != ord("r") and _pathlike(sub.value):
                    found.append((sub.lineno, ast.get_source_segment(source, sub.value)))
            is_log = isinstance(node, ast.Call) and getattr(node.func, "attr", "") in LOGGING
            if is_log and i and _pathlike(arg):
                found.append((arg.lineno, ast.get_source_segment(source, arg)))
    return found


def test_the_scan_finds_raw_names():
    bad = ('print(f"cgx: wrote {path}")\nlog.warning("skipped %s", name)\nlines.append(f"  {p.name}: ok")\n'
           'sys.stderr.write(f"{error}")\nlines += [f"{f}" for f in files]\n')
    assert sorted(e for _, e in raw_names(bad)) == ["error", "f", "name", "p.name", "path"]
    good = ('print(f"cgx: wrote {shown(path)}")\nlog.warning("skipped %s", shown(name))\nprint(f"{name!r} {step}")\n'
            'raise DataError(f"{path}")\n')
    assert raw_names(good) == []


def test_every_printed_name_in_cgx_goes_through_shown():
    found = [f"{py.relative_to(CGX.parent)}:{line}: {expr}"
             for py in sorted(CGX.rglob("*.py"))
             for line, expr in raw_names(py.read_text())
             if (py.relative_to(CGX.parent).as_posix(), expr) not in ALLOWED]
    assert not found, "print these through cgx.safe_text.shown:\n" + "\n".join(found)
