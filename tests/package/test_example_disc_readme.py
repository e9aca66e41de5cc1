"""The example discriminator's README command runs as written (issue 26: it failed with "does not accept
argument 'ndf'"): its `python -m cgx.run` line, with the module loaded by path instead of pip-installed
(tests/plugins/test_example_plugin.py covers the installed package) and tiny sizes appended."""
from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from cgx.run import main as run_main

EXAMPLE = Path(__file__).resolve().parents[2] / "plugins" / "examples" / "cgx-example-disc"


def readme_command(prefix: str) -> list[str]:
    block = re.search(r"```bash\n(.*?)```", (EXAMPLE / "README.md").read_text(), re.S).group(1)
    (line,) = [ln.split("  #")[0] for ln in block.splitlines() if ln.startswith(prefix)]
    return shlex.split(line)


def tiny(tmp_path: Path, demo_data: Path) -> list[str]:
    return [f"plugins=[{EXAMPLE / 'cgx_example_disc.py'}]", f"data.root={demo_data}",
            f"train.run_dir={tmp_path / 'run'}", "train.steps=2", "train.ckpt_every=2", "train.image_every=0",
            "train.progress=false", "train.precision=fp32", "model.generator.ngf=4", "model.generator.n_blocks=1",
            "data.load_size=32", "data.crop_size=32", "data.workers=0", "buffer.size=2"]


@pytest.mark.slow
def test_the_readme_command_trains(tmp_path, demo_data, capsys):
    argv = readme_command("python -m cgx.run")
    assert argv[:3] == ["python", "-m", "cgx.run"] and "data.root=data/demo" in argv
    assert readme_command("cgx demo-data") == ["cgx", "demo-data", "data/demo"]  # the folder it trains from
    extra = ["model.discriminator.width=4", "model.discriminator.n_down=2"]
    assert run_main([*argv[3:], *tiny(tmp_path, demo_data), *extra]) == 0, capsys.readouterr().err
    assert "trained 2 steps" in capsys.readouterr().out


def test_the_name_alone_is_refused_as_the_readme_says(tmp_path, demo_data, capsys):
    assert run_main(["demo", "data.source=folder", "model.discriminator.name=example_global",
                     *tiny(tmp_path, demo_data)]) == 2
    err = capsys.readouterr().err
    assert "example_global' does not accept argument 'ndf'" in err and err.count("\n") == 1
