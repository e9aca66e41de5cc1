"""cgx sweep --slurm: the job array script (each task the point's overrides and run folder, through the
batch script), and a real array on a local SLURM where one is installed (as tests/cluster)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, TINY_RECIPE, merge

from cgx.sweep.folder import SweepDir
from cgx.sweep.grid import expand, parse_grid
from cgx.sweep.runner import Job
from cgx.sweep.slurm import array_script

sys.path.insert(0, str(REPO / "cluster" / "test"))
from local_slurm import LocalSlurm, available  # noqa: E402


def jobs_for(sweep: SweepDir, recipe: str) -> list[Job]:
    points = expand([parse_grid("optim.betas=[0.5, 0.999],[0.0,0.99]"), parse_grid("data.root=it's here")])
    return [Job(p, 2, [recipe, *p.args, f"train.run_dir={sweep.run(p.name)}"], None, sweep.run(p.name),
                sweep.log(p.name)) for p in points]


def test_array_script_has_one_task_per_point(tmp_path):
    sweep = SweepDir(tmp_path / "sw")
    text = array_script(sweep, jobs_for(sweep, "/r/my recipe.yaml"), Path("/opt/cgx/train.sbatch"), parallel=3)
    assert "#SBATCH --array=0-1%3" in text and "#SBATCH --requeue" in text and "#SBATCH --signal=B:USR1@180" in text
    assert f"#SBATCH --output={(tmp_path / 'sw' / 'logs').resolve()}/slurm-%A_%a.out" in text
    assert len(re.findall(r"^  \d\) export CGX_RUN_DIR=", text, re.M)) == 2
    assert "train.run_dir=" not in text  # the batch script sets it from CGX_RUN_DIR
    assert text.rstrip().endswith("exec bash /opt/cgx/train.sbatch \"$@\"")


@pytest.mark.multiprocess
def test_each_task_hands_its_point_to_the_batch_script(tmp_path):
    """The array script run as SLURM runs task i: the batch script gets the recipe and the point's
    overrides word for word (spaces, quotes, brackets) and the point's run folder."""
    sweep = SweepDir(tmp_path / "sw")
    fake = tmp_path / "fake.sbatch"
    fake.write_text('printf "%s\\n" "$CGX_RUN_DIR" "$CGX_PORT" "$@"\n')
    jobs = jobs_for(sweep, "/r/my recipe.yaml")
    script = tmp_path / "array.sbatch"
    script.write_text(array_script(sweep, jobs, fake))
    for i, job in enumerate(jobs):
        out = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": str(i)},
                             capture_output=True, text=True, check=True).stdout.splitlines()
        assert out == [str(job.run.resolve()), str(29500 + i), "/r/my recipe.yaml", *job.point.args]
    bad = subprocess.run(["bash", str(script)], env={**os.environ, "SLURM_ARRAY_TASK_ID": "7"}, capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "no point for array task 7" in bad.stderr


why = available()


@pytest.mark.multiprocess
@pytest.mark.long
@pytest.mark.skipif(bool(why) and os.environ.get("CGX_REQUIRE_SLURM") != "1", reason=f"no local SLURM: {why}")
def test_a_real_job_array_trains_every_point_and_the_sweep_then_skips_them(tmp_path, demo_data):
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(merge(TINY_RECIPE, {"data": {"root": str(demo_data), "source": "folder"},
                                                         "train": {"steps": 2, "ckpt_every": 1}})))
    out = tmp_path / "sweep"
    sweep = [sys.executable, "-m", "cgx.cli", "sweep", str(recipe), "--seeds", "1,2", "--out", str(out), "--no-eval"]
    with LocalSlurm(tmp_path / "slurm", ctld_port=16917, node_port=17101) as slurm:  # apart from tests/cluster
        env = {**slurm.env, "CGX_PROCS_PER_NODE": "1", "CGX_MAX_RESTARTS": "0", "CGX_PORT_BASE": "29640",
               "CGX_ACTIVATE": f"export PATH={Path(sys.executable).parent}:$PATH OMP_NUM_THREADS=1"}
        proc = subprocess.run([*sweep, "--slurm"], env=env, cwd=REPO, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        job = re.search(r"submitted job array (\d+) \(2 point", proc.stdout).group(1)
        for task in ("0", "1"):
            slurm.wait(f"{job}_{task}", timeout=300)
    for seed in ("1", "2"):
        assert (out / "runs" / f"train.seed={seed}" / "checkpoints" / "step_00000002").is_dir()
        log = (out / "logs" / f"slurm-{job}_{int(seed) - 1}.out").read_text()
        assert "trained 2 steps" in log
    again = subprocess.run(sweep, env=os.environ, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and again.stdout.count("finished before (skipped)") == 2, again.stdout
