"""The sweep's results page, ``SWEEP/index.html``: the table of ``cgx.sweep.table`` and, per configuration,
each point's scores with a link to its run's own results page (``cgx.eval.page``:
``runs/NAME/eval/step_N/index.html``). Every link is relative, so the sweep folder can be copied or
served as it is; every name and value is HTML-escaped."""
from __future__ import annotations

import html
import os
from typing import Sequence

from ..outputs import write_new_file
from .folder import SweepDir
from .runner import Outcome
from .table import ConfigRow, cell, header, metric_names

STYLE = """body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin:1em 0}
td,th{border:1px solid #ccc;padding:.3em .6em;text-align:right}td:first-child,th:first-child{text-align:left}
code{background:#f4f4f4}.failed{color:#a00}"""


def _e(value) -> str:
    return html.escape(str(value), quote=True)


def write_sweep_page(sweep: SweepDir, rows: Sequence[ConfigRow], failed: Sequence[Outcome], command: str) -> None:
    metrics = metric_names(rows)
    head = "".join(f"<th>{_e(header(m))}</th>" for m in metrics)
    out = [f"<!doctype html><meta charset=utf-8><title>cgx sweep</title><style>{STYLE}</style>",
           f"<h1>cgx sweep</h1><p><code>{_e(command)}</code></p>",
           "<h2>Per configuration</h2><p>mean over the seeds (min..max); ↑ higher is better, ↓ lower</p>",
           f"<table><tr><th>configuration</th><th>seeds</th>{head}</tr>"]
    for row in rows:
        seeds = ",".join(p.point.seed or "-" for p in row.points) or "none"
        out.append(f"<tr><td>{_e(row.name)}</td><td>{_e(seeds)}</td>"
                   + "".join(f"<td>{_e(cell(row.stats(m)))}</td>" for m in metrics) + "</tr>")
    out.append("</table><h2>Runs</h2>")
    out.append(f"<table><tr><th>run</th><th>step</th>{head}</tr>")
    for row in rows:
        for p in row.points:
            name = _e(p.point.name)
            if p.page is not None:
                name = f'<a href="{_e(os.path.relpath(p.page, sweep.root))}">{name}</a>'
            out.append(f"<tr><td>{name}</td><td>{p.step}</td>"
                       + "".join(f"<td>{_e(cell({'mean': p.metrics[m], 'n': 1}) if m in p.metrics else '-')}</td>"
                                 for m in metrics) + "</tr>")
    out.append("</table>")
    if failed:
        out.append("<h2 class=failed>Failed points</h2><ul>")
        out += [f"<li class=failed>{_e(o.name)}: {_e(o.reason)} (log: <a href=\"{_e(os.path.relpath(o.log, sweep.root))}\">"
                f"{_e(os.path.relpath(o.log, sweep.root))}</a>)</li>" for o in failed if o.log is not None]
        out.append("</ul>")
    out.append('<p>Tables: <a href="results.md">results.md</a>, <a href="results.csv">results.csv</a>, '
               '<a href="results.json">results.json</a></p>')
    write_new_file(sweep.page, "\n".join(out) + "\n")
