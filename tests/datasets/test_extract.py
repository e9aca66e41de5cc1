"""cgx.datasets.extract.unpack on its own: where the members land."""
from __future__ import annotations

import io
import zipfile

import pytest

from cgx.datasets.extract import member_parts, unpack
from cgx.errors import ArchiveError


def _zip(path, names):
    with zipfile.ZipFile(path, "w") as z:
        for n in names:
            z.writestr(n, n.encode())
    return path


def test_one_top_folder_becomes_the_target_and_macos_forks_are_left_out(tmp_path):
    a = _zip(tmp_path / "x.zip", ["horse2zebra/trainA/1.jpg", "__MACOSX/horse2zebra/trainA/._1.jpg"])
    unpack(a, tmp_path / "out", progress=False)
    assert [p.relative_to(tmp_path / "out").as_posix() for p in sorted((tmp_path / "out").rglob("*"))] == \
        ["trainA", "trainA/1.jpg"]


def test_members_at_the_top_stay_as_they_are(tmp_path):
    a = _zip(tmp_path / "x.zip", ["testA/1.jpg", "testB/1.jpg"])
    unpack(a, tmp_path / "out", progress=False)
    assert (tmp_path / "out" / "testB" / "1.jpg").read_bytes() == b"testB/1.jpg"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "x.zip"]


@pytest.mark.filterwarnings("ignore:Duplicate name")
@pytest.mark.parametrize("names", [["a/1.jpg", "a/1.jpg"], ["a", "a/1.jpg"]])
def test_a_path_given_twice_or_as_file_and_folder_is_refused(tmp_path, names):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for n in names:
            z.writestr(n, b"x")
    (tmp_path / "x.zip").write_bytes(buf.getvalue())
    with pytest.raises(ArchiveError, match="given twice, or is both a file and a folder"):
        unpack(tmp_path / "x.zip", tmp_path / "out", progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.zip"]


@pytest.mark.parametrize("name", ["../x", "a/../../x", "/x", "C:/x", "c:x", "..\\x", "a\x00b"])
def test_member_names_that_could_escape(name, tmp_path):
    with pytest.raises(ArchiveError):
        member_parts(name, tmp_path / "x.zip")


def test_harmless_names(tmp_path):
    assert member_parts("./a//b/./c.jpg", tmp_path) == ("a", "b", "c.jpg")
    assert member_parts("a..b/c..jpg", tmp_path) == ("a..b", "c..jpg")
