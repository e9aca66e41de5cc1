"""``cgx sweep``: plan the points, check every one, run them (here or as a SLURM job array), evaluate
each, and write the table and the results page."""
from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from ..errors import CgxError, UsageError
from ..safe_text import shown
from .folder import SweepDir
from .grid import Grid, Point, expand, parse_grid, parse_seeds
from .runner import Job, final_step, run_local

EXIT_SOME_FAILED = 1


@dataclass
class EvalInputs:
    """What ``cgx eval`` scores each point on (None: from the point's recipe) and how."""

    pairs: str | None = None
    a: str | None = None
    b: str | None = None
    max_images: int | None = None
    inception: str | None = None
    skip: bool = False


def plan(grids: Sequence[str], seeds: str | None) -> list[Point]:
    parsed: list[Grid] = [parse_grid(g) for g in grids]
    if seeds is not None:
        parsed.append(parse_seeds(seeds))
    return expand(parsed)


def eval_args(cfg, given: EvalInputs) -> list[str]:
    """The point's ``cgx eval`` inputs: the sweep's --eval-* options, else the recipe's eval.pairs (or
    {data.root}/test for paired data), else eval.a / eval.b ({data.root}/testA, testB). A test folder
    that does not exist is a UsageError naming it and the option that would replace it."""
    root = Path(cfg.data.root)
    pairs = given.pairs or cfg.eval.pairs or (str(root / "test") if cfg.data.paired and not (given.a or given.b) else None)
    if pairs and not (given.a or given.b):
        inputs = [("--pairs", pairs, "--eval-pairs")]
    else:
        inputs = [("--a", given.a or cfg.eval.a or str(root / "testA"), "--eval-a"),
                  ("--b", given.b or cfg.eval.b or str(root / "testB"), "--eval-b")]
    out = []
    for flag, value, option in inputs:
        if "{" not in value and "::" not in value and not Path(value).is_dir():
            raise UsageError(f"the test images cgx eval scores each point on are not there: {value} is not a folder; "
                             f"give {option} FOLDER, or --no-eval")
        out += [flag, value]
    if given.max_images is not None:
        out += ["--max-images", str(given.max_images)]
    if given.inception is not None:
        out += ["--inception", given.inception]
    return out


def check_point(recipe: str, point: Point, run: Path, plugins: Sequence[str], given: EvalInputs) -> tuple[int, list[str] | None]:
    """Load and check the point's recipe as ``cgx train`` would (every key and value, every plugin named
    and its arguments, the run folder), before anything runs: its last step and its eval arguments."""
    from ..config import load_config
    from ..plugins import default_registry
    from ..recipe_record import apply_command_line
    from ..run_dir import RunDir
    from ..train import components
    from ..train.trainer import data_folders

    overrides = [*point.args, f"train.run_dir={run}"]
    try:
        cfg = apply_command_line(load_config(recipe, overrides), recipe, plugins, overrides, say=False)
        registry = default_registry()
        components.load_recipe_plugins(cfg, registry)
        components.check_components(cfg, registry)
        RunDir(run).claim(recipe, data_folders(cfg))
        args = None if given.skip else eval_args(cfg, given)
    except CgxError as e:
        raise type(e)(f"grid point {point.name}: {e}") from None
    return cfg.train.steps, args


def run_sweep(recipe: str, grids: Sequence[str], out: str, *, seeds: str | None = None, parallel: int = 1,
              slurm: bool = False, script: str | None = None, plugins: Sequence[str] = (),
              given: EvalInputs = EvalInputs(), command: str = "cgx sweep",
              say: Callable[[str], None] = print) -> int:
    from ..recipes import resolve

    if parallel < 1:
        raise UsageError(f"--parallel {parallel}: give a whole number of at least 1 (points run at a time)")
    points = plan(grids, seeds)
    recipe = str(resolve(recipe).resolve())
    sweep = SweepDir(out)
    sweep.claim(recipe)
    jobs = []
    for p in points:
        run = sweep.run(p.name)
        steps, eval_argv = check_point(recipe, p, run, plugins, given)
        train_argv = [recipe, *p.args, f"train.run_dir={run}", *(f"--plugins={x}" for x in plugins)]
        jobs.append(Job(p, steps, train_argv, None if eval_argv is None else ["eval", str(run), *eval_argv,
                                                                              "--no-progress"], run, sweep.log(p.name)))
    with sweep.locked():
        sweep.write_record({"recipe": recipe, "grids": list(grids), "seeds": seeds, "command": command,
                            "points": [{"name": p.name, "overrides": p.args} for p in points]})
        sweep.make_parts()
        say(f"cgx: sweep: {len(points)} point(s) in {shown(sweep.root)}: " + ", ".join(shown(p.name) for p in points))
        if slurm:
            return submit_array(sweep, jobs, script, parallel if parallel > 1 else None, command, say)
        outcomes = run_local(jobs, parallel, say)
        return finish(sweep, points, outcomes, command, say)


def submit_array(sweep: SweepDir, jobs: Sequence[Job], script: str | None, parallel: int | None, command: str,
                 say: Callable[[str], None]) -> int:
    from .slurm import batch_script, submit, write_array

    todo = [j for j in jobs if final_step(j.run) < j.steps]
    again = command.replace(" --slurm", "")
    if not todo:
        say(f"cgx: sweep: every point is trained; evaluate them and write the table with: {again}")
        return 0
    path = write_array(sweep, todo, batch_script(script), parallel)
    job = submit(path, cwd=Path.cwd())
    if job is None:
        say(f"cgx: sweep: sbatch not found; the job array of {len(todo)} point(s) is written to {shown(path)}: "
            f"submit it with: sbatch {shlex.quote(str(path))}")
    else:
        say(f"cgx: sweep: submitted job array {job} ({len(todo)} point(s), {shown(path)}); when it is done, "
            f"evaluate and write the table with: {again}")
    return 0


def finish(sweep: SweepDir, points: Sequence[Point], outcomes, command: str, say: Callable[[str], None]) -> int:
    from .page import write_sweep_page
    from .table import collect, write_tables

    failed = [o for o in outcomes if not o.ok]
    rows = collect(sweep, points, [o.name for o in failed])
    say(write_tables(sweep, rows, failed).rstrip("\n"))
    write_sweep_page(sweep, rows, failed, command)
    say(f"cgx: sweep: table in {shown(sweep.table_md)} (.csv, .json), results page {shown(sweep.page)}")
    if failed:
        say(f"cgx: sweep: {len(failed)} of {len(points)} point(s) failed or stopped: "
            + "; ".join(f"{shown(o.name)} ({shown(o.log)})" for o in failed))
        return EXIT_SOME_FAILED
    return 0

