"""The sweep's table: per configuration (the points that differ only in ``train.seed``), each metric's mean
and spread (min..max) over its seeds, from each point's evaluation record (``RUN/eval/step_N.json``,
the newest checkpoint's), plus the training time per step.

Metrics are every number an evaluation record scores per direction (``AtoB PSNR``, ``BtoA FID``,
``AtoB KID_mean`` ...; not the image counts, not KID's own spread). Time per step (``s/step``): the
median of the step times the run logged (``perf/step_time_s`` in ``RUN/log.jsonl``, logger jsonl;
the first report, with the start-up, left out where there are others), else the wall time of the
sweep's training launches over the steps they trained (start-up and checkpoints included).

Written as ``results.md`` (the table), ``results.csv`` (one row per configuration and metric) and
``results.json`` (the same, with every point's values and the failed points)."""
from __future__ import annotations

import csv
import io
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

from ..outputs import write_new_file
from ..run_dir import JSONL, RunDir
from .folder import SweepDir
from .grid import Point
from .runner import Outcome, final_step, read_time

HIGHER_IS_BETTER = ("PSNR", "SSIM")
TIME = "s/step"


@dataclass
class PointResult:
    point: Point
    step: int
    metrics: dict[str, float]
    record: Path | None
    page: Path | None
    time_source: str | None = None


@dataclass
class ConfigRow:
    name: str
    overrides: list[list[str]]
    points: list[PointResult] = field(default_factory=list)

    def stats(self, metric: str) -> dict | None:
        values = [p.metrics[metric] for p in self.points if metric in p.metrics]
        return summarize(values) if values else None


def summarize(values: Sequence[float]) -> dict:
    """mean, min, max, sample std (None for one value) and n of ``values``."""
    return {"mean": statistics.fmean(values), "min": min(values), "max": max(values),
            "std": statistics.stdev(values) if len(values) > 1 else None, "n": len(values)}


def record_metrics(record: dict) -> dict[str, float]:
    """``{"AtoB PSNR": 21.3, ...}``: every finite number scored per direction in an evaluation record."""
    out = {}
    for direction, scores in (record.get("scores") or {}).items():
        if not isinstance(scores, dict):
            continue
        for key, value in scores.items():
            if key.startswith("n_") or key == "KID_std" or isinstance(value, bool):
                continue
            if isinstance(value, (int, float)) and math.isfinite(value):
                out[f"{direction} {key}"] = float(value)
    return out


def step_time(run: Path, timing: Path) -> tuple[float, str] | None:
    """The run's time per step and where it comes from (see the module docstring)."""
    logged = []
    try:
        with open(run / JSONL, encoding="utf-8", errors="replace") as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                value = r.get("values", {}).get("perf/step_time_s") if isinstance(r, dict) and r.get("kind") == "scalars" else None
                if isinstance(value, (int, float)):
                    logged.append(float(value))
    except OSError:
        pass
    if logged:
        kept = logged[1:] if len(logged) > 1 else logged
        return statistics.median(kept), f"median of {len(kept)} logged perf/step_time_s"
    t = read_time(timing)
    if t and t["steps"] > 0:
        return t["seconds"] / t["steps"], f"wall time of {t['launches']} launch(es) / {t['steps']} steps"
    return None


def collect(sweep: SweepDir, points: Sequence[Point], failed: Sequence[str] = ()) -> list[ConfigRow]:
    """Every point's results, grouped by configuration in the grid's order. A point counts where it has
    a checkpoint and did not fail (``failed``: names): its scores from the evaluation record of its
    newest checkpoint where there is one (none with ``--no-eval``), and its time per step."""
    rows: dict[str, ConfigRow] = {}
    for p in points:
        row = rows.setdefault(p.config_name, ConfigRow(p.config_name, [list(kv) for kv in p.config]))
        run = sweep.run(p.name)
        step = final_step(run)
        if step < 0 or p.name in failed:
            continue
        record_path = RunDir(run).eval_record(step)
        try:
            record = json.loads(record_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            record = None
        metrics = record_metrics(record) if isinstance(record, dict) else {}
        timed = step_time(run, sweep.log(p.name).with_suffix(".time.json"))
        if timed is not None:
            metrics[TIME] = timed[0]
        page = RunDir(run).eval_page(step)
        row.points.append(PointResult(p, step, metrics, record_path if isinstance(record, dict) else None,
                                      page if page.is_file() else None, timed[1] if timed else None))
    return list(rows.values())


def metric_names(rows: Sequence[ConfigRow]) -> list[str]:
    seen: dict[str, None] = {}
    for row in rows:
        for p in row.points:
            for m in p.metrics:
                if m != TIME:
                    seen.setdefault(m)
    return sorted(seen, key=lambda m: (m.split(" ")[0], _order(m.split(" ", 1)[-1]))) + [TIME]


def _order(metric: str) -> tuple[int, str]:
    known = ["L1", "PSNR", "SSIM", "FID", "KID_mean", "cycle_L1"]
    return (known.index(metric) if metric in known else len(known), metric)


def header(metric: str) -> str:
    kind = metric.split(" ", 1)[-1]
    return f"{metric} {'↑' if kind in HIGHER_IS_BETTER else '↓'}" if metric != TIME else TIME


def cell(stats: dict | None, digits: int = 4) -> str:
    if stats is None:
        return "-"
    g = lambda v: f"{v:.{digits}g}"  # noqa: E731
    if stats["n"] == 1:
        return g(stats["mean"])
    return f"{g(stats['mean'])} ({g(stats['min'])}..{g(stats['max'])})"


def markdown(rows: Sequence[ConfigRow], failed: Sequence[Outcome] = ()) -> str:
    metrics = metric_names(rows)
    lines = ["| configuration | seeds | " + " | ".join(header(m) for m in metrics) + " |",
             "|---|---|" + "---|" * len(metrics)]
    for row in rows:
        seeds = ",".join(p.point.seed or "-" for p in row.points) or "none"
        lines.append(f"| {md_escape(row.name)} | {seeds} | " + " | ".join(cell(row.stats(m)) for m in metrics) + " |")
    lines.append("")
    lines.append("Each cell: mean over the seeds (min..max); one seed: its value. ↑ higher is better, ↓ lower. "
                 "s/step: training time per step.")
    if failed:
        lines.append("")
        lines.append("Failed points (not in the table):")
        lines += [f"- {md_escape(o.name)}: {md_escape(o.reason)} (log: {md_escape(str(o.log))})" for o in failed]
    return "\n".join(lines) + "\n"


def md_escape(text: str) -> str:
    from ..safe_text import shown

    return shown(text).replace("|", "\\|")


def csv_text(rows: Sequence[ConfigRow]) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["configuration", "metric", "n", "mean", "min", "max", "std", "seeds"])
    for row in rows:
        for m in metric_names(rows):
            s = row.stats(m)
            if s is not None:
                seeds = ",".join(p.point.seed or "-" for p in row.points if m in p.metrics)
                w.writerow([row.name, m, s["n"], repr(s["mean"]), repr(s["min"]), repr(s["max"]),
                            "" if s["std"] is None else repr(s["std"]), seeds])
    return buf.getvalue()


def json_record(rows: Sequence[ConfigRow], failed: Sequence[Outcome], sweep: SweepDir) -> dict:
    metrics = metric_names(rows)
    return {
        "configurations": [{
            "name": row.name, "overrides": row.overrides,
            "metrics": {m: row.stats(m) for m in metrics if row.stats(m) is not None},
            "points": [{"name": p.point.name, "seed": p.point.seed, "step": p.step, "metrics": p.metrics,
                        "record": str(p.record.relative_to(sweep.root)) if p.record else None,
                        "page": str(p.page.relative_to(sweep.root)) if p.page else None,
                        "time_per_step": p.time_source} for p in row.points],
        } for row in rows],
        "failed": [{"name": o.name, "status": o.status, "reason": o.reason, "log": str(o.log)} for o in failed],
        "higher_is_better": [m for m in metrics if m.split(" ", 1)[-1] in HIGHER_IS_BETTER],
    }


def write_tables(sweep: SweepDir, rows: Sequence[ConfigRow], failed: Sequence[Outcome]) -> str:
    """Write results.md/.csv/.json; return the markdown."""
    text = markdown(rows, failed)
    write_new_file(sweep.table_md, text)
    write_new_file(sweep.table_csv, csv_text(rows))
    write_new_file(sweep.table_json, json.dumps(json_record(rows, failed, sweep), indent=2) + "\n")
    return text
