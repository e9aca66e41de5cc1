"""Memory at inference (issue 17, case 8): batches sized to the image, out of memory as one line
saying what to lower, an absurd network from a checkpoint refused before it is allocated."""
from __future__ import annotations

import shutil

import numpy as np
import torch
from PIL import Image

from cgx.cli import main as cli_main
from cgx.translate import BATCH_PIXELS, images_per_batch
from cgx.train.checkpoint import list_checkpoints
from cgx.train.manifest import write_manifest


def test_batches_are_sized_to_the_image():
    assert images_per_batch(256, 256, 8) == 8
    assert images_per_batch(4000, 3000, 8) == 1  # a 12-MP photo goes alone
    assert images_per_batch(1024, 1024, 8) == BATCH_PIXELS // (1024 * 1024)
    assert images_per_batch(20000, 20000, 8) == 1


def test_out_of_memory_is_one_line_saying_what_to_lower(tiny_run, tmp_path, capsys, monkeypatch):
    import cgx.translate as translate

    def oom(net, x):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 58.00 GiB")

    monkeypatch.setattr(translate, "translate_batch", oom)
    src = tmp_path / "in"
    src.mkdir()
    Image.fromarray(np.zeros((16, 20, 3), np.uint8)).save(src / "a.png")
    capsys.readouterr()
    assert cli_main(["translate", str(tiny_run), str(src), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("cgx: error: out of memory translating 1 image(s) of 20x16") and "--batch-size" in err
    assert "\n" not in err


def test_an_absurd_network_in_a_checkpoint_is_refused_before_allocating(tiny_run, demo_data, tmp_path, capsys):
    ckpt = tmp_path / "step_00000002"
    shutil.copytree(list_checkpoints(tiny_run / "checkpoints")[-1], ckpt)
    state = torch.load(ckpt / "train.pt", weights_only=True)
    state["config"]["model"]["generator"]["ngf"] = 8192
    torch.save(state, ckpt / "train.pt")
    write_manifest(ckpt)  # a checkpoint whose author wrote it so
    capsys.readouterr()
    assert cli_main(["translate", str(ckpt), str(demo_data / "testA"), str(tmp_path / "out"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"cgx: error: {ckpt / 'train.pt'}: its recipe asks for generators of") and "ngf" in err
    assert "refused before allocating" in err and "\n" not in err
