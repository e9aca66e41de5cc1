"""``cgx sweep --slurm``: the points not finished as one SLURM job array, each task the existing batch
script (``cluster/slurm/train.sbatch``: torchrun on the task's nodes, USR1 checkpoint and requeue,
resume) with the point's run folder and overrides.

The array script is written to ``SWEEP/slurm/array.sbatch``; its ``#SBATCH`` lines are the batch
script's own (one node, requeue on USR1) plus ``--array=0-(N-1)`` (``%P``: at most P at a time) and an
output file per task in ``SWEEP/logs/``. Each task sets ``CGX_RUN_DIR`` to its point's run folder and
``CGX_PORT`` to ``CGX_PORT_BASE`` (29500) plus its index, so tasks on one node do not meet at one
rendezvous port, and runs the batch script in its own process (``exec``: SLURM's USR1 reaches it).
Evaluation and the table follow when the same ``cgx sweep`` command (without ``--slurm``) runs again
after the array: every trained point is then skipped, and evaluated."""
from __future__ import annotations

import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Sequence

import cgx

from ..errors import SetupError, UsageError
from ..outputs import write_new_file
from .folder import SweepDir
from .runner import Job

BATCH_SCRIPT = Path(cgx.__file__).resolve().parent.parent / "cluster" / "slurm" / "train.sbatch"


def batch_script(given: str | None) -> Path:
    path = Path(given) if given else BATCH_SCRIPT
    if not path.is_file():
        raise UsageError(f"--batch-script {path}: not found; --slurm runs each point through cgx's SLURM batch script "
                         f"(cluster/slurm/train.sbatch of a cgx checkout): name it with --batch-script")
    return path.resolve()


def array_script(sweep: SweepDir, jobs: Sequence[Job], script: Path, parallel: int | None = None) -> str:
    """The job array's script: task i runs ``jobs[i]``."""
    limit = f"%{parallel}" if parallel else ""
    lines = [
        "#!/bin/bash",
        f"# cgx sweep: {len(jobs)} point(s) of {sweep.root}, one array task each, through {script.name}",
        "# (written by cgx sweep --slurm; evaluate and tabulate afterwards: the same cgx sweep command without --slurm)",
        "#SBATCH --job-name=cgx-sweep",
        f"#SBATCH --array=0-{len(jobs) - 1}{limit}",
        "#SBATCH --nodes=1",
        "#SBATCH --ntasks-per-node=1",
        "#SBATCH --signal=B:USR1@180",
        "#SBATCH --requeue",
        "#SBATCH --open-mode=append",
        f"#SBATCH --output={sweep.logs.resolve()}/slurm-%A_%a.out",
        "",
        'case "${SLURM_ARRAY_TASK_ID:-}" in',
    ]
    for i, job in enumerate(jobs):
        args = " ".join(shlex.quote(a) for a in job.train_argv if not a.startswith("train.run_dir="))
        lines.append(f"  {i}) export CGX_RUN_DIR={shlex.quote(str(job.run.resolve()))}; set -- {args} ;;")
    lines += [
        '  *) echo "cgx sweep: no point for array task ${SLURM_ARRAY_TASK_ID:-(none)}" >&2; exit 2 ;;',
        "esac",
        'export CGX_PORT=$(( ${CGX_PORT_BASE:-29500} + SLURM_ARRAY_TASK_ID ))',
        f"exec bash {shlex.quote(str(script))} \"$@\"",
        "",
    ]
    return "\n".join(lines)


def write_array(sweep: SweepDir, jobs: Sequence[Job], script: Path, parallel: int | None = None) -> Path:
    from ..run_dir import refuse_link

    refuse_link(sweep.slurm)
    sweep.slurm.mkdir(parents=True, exist_ok=True)
    path = sweep.slurm / "array.sbatch"
    write_new_file(path, array_script(sweep, jobs, script, parallel))
    return path


def submit(path: Path, cwd: Path | None = None) -> str | None:
    """``sbatch --parsable path``: the array's job id; None where sbatch is not installed."""
    if shutil.which("sbatch") is None:
        return None
    proc = subprocess.run(["sbatch", "--parsable", str(path)], capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [""])[-1]
        raise SetupError(f"sbatch {path} failed (exit {proc.returncode}): {last}; the array script is written: "
                         f"submit it with sbatch once that is fixed")
    return proc.stdout.strip().split(";")[0]
