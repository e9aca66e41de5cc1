"""Files a user hands cgx (checkpoints, the authors' .pth files, --inception weights) load as plain
tensors only, through one function, with one message: never torch's advice to retry with
weights_only=False (issue 17, case 2)."""
from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import torch

from cgx.errors import CgxError

PACKAGE = Path(__file__).resolve().parents[2] / "cgx"


class Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def loaders():
    from cgx.eval.inception import InceptionFeatures
    from cgx.interop.authors import read_file
    from cgx.train.checkpoint import load_file

    yield "checkpoint", load_file
    yield "authors", read_file
    pytest.importorskip("torch_fidelity")
    yield "inception", InceptionFeatures


@pytest.mark.parametrize("kind", ["checkpoint", "authors", "inception"])
@pytest.mark.parametrize("content", ["code", "junk"])
def test_a_hostile_or_damaged_file_is_one_line_without_unsafe_advice(tmp_path, kind, content):
    load = dict(loaders())[kind]
    path, marker = tmp_path / "file.pth", tmp_path / "executed"
    if content == "code":
        torch.save({"model.1.weight": torch.zeros(1), "x": Evil(marker)}, path)
    else:
        path.write_bytes(b"PK\x03\x04" + os.urandom(3000))
    with pytest.raises(CgxError) as info:
        load(path)
    msg = str(info.value)
    assert not marker.exists()
    assert "\n" not in msg and "weights_only" not in msg.lower() and "trusted source" not in msg
    assert msg.startswith("cannot load ") and str(path) in msg
    if content == "code":
        assert "refused" in msg and "Python objects" in msg
    else:
        assert "damaged or not a PyTorch weights file" in msg


def test_only_the_shared_loader_calls_torch_load():
    """Every torch.load of a user's file goes through cgx.untrusted (one message, weights only); the one other
    load, cgx.testing's round trip of a plugin's state through an in-memory buffer it just wrote, reads no file."""
    calls = [f"{p.relative_to(PACKAGE)}:{i}" for p in PACKAGE.rglob("*.py") if p.name != "untrusted.py"
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if re.search(r"torch\.load\(", line.split("#")[0]) and "``" not in line
             and not re.search(r"torch\.load\(buf\b", line)]
    assert calls == []
