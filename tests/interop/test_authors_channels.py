"""The authors' input_nc / output_nc (issue 19): a grey -> RGB authors' checkpoint imports into a run
whose data.a is grey, translates grey images, and exports back to files of the same shapes."""
from __future__ import annotations

import numpy as np
import torch
import yaml
from authors_nets import NLayerDiscriminator, ResnetGenerator
from PIL import Image

from cgx.config import ImageSpec
from cgx.data.demo import generate
from cgx.infer import load_generators
from cgx.interop.export import export_authors
from cgx.interop.importer import import_run
from cgx.translate import translate_folder

# input_nc=1 (A: grey), output_nc=3 (B: RGB); their D_A judges B, D_B judges A
AUTHORS = {"G_A": lambda: ResnetGenerator(1, 3, 4, n_blocks=1), "G_B": lambda: ResnetGenerator(3, 1, 4, n_blocks=1),
           "D_A": lambda: NLayerDiscriminator(3, 4, 2), "D_B": lambda: NLayerDiscriminator(1, 4, 2)}


def test_grey_to_rgb_authors_checkpoint_imports_translates_and_exports(tmp_path):
    folder = tmp_path / "authors"
    folder.mkdir()
    for i, (name, factory) in enumerate(AUTHORS.items()):
        torch.manual_seed(i)
        torch.save(factory().state_dict(), folder / f"latest_net_{name}.pth")
    r = import_run([folder], tmp_path / "run")
    recipe = yaml.safe_load(r.recipe.read_text())
    assert recipe["data"]["a"]["channels"] == 1 and recipe["data"]["b"]["channels"] == 3
    assert recipe["method"]["identity_weight"] == 0
    assert recipe["model"]["generator"]["in_channels"] == 1 and recipe["model"]["generator"]["out_channels"] == 3
    gens = load_generators(r.run_dir)
    assert gens.G(torch.zeros(1, 1, 32, 32)).shape[1] == 3 and gens.F(torch.zeros(1, 3, 32, 32)).shape[1] == 1

    data = generate(tmp_path / "data", n_train=1, n_test=2, size=32, a=ImageSpec(1, 8))
    done = translate_folder(folder / "latest_net_G_B.pth", data / "testB", tmp_path / "grey", direction="BtoA",
                            progress=False)  # the authors' single file: its own channels
    with Image.open(done.written[0]) as im:
        assert im.mode == "L"
    assert np.asarray(Image.open(done.written[0])).shape == (32, 32)

    written = export_authors(r.run_dir, tmp_path / "back")
    for path in written:
        name = path.name.removeprefix("latest_net_").removesuffix(".pth")
        original = torch.load(folder / path.name, weights_only=True)
        exported = torch.load(path, weights_only=True)
        assert {k: v.shape for k, v in exported.items()} == {k: v.shape for k, v in original.items()}, name
        assert all(torch.equal(exported[k], original[k]) for k in original), name
