"""One self-contained HTML file per report: the page, its styles, its script and uPlot inline.

Why one file with everything inline: whoever signs a migration off opens it from a mail
or a CI artifact, often where no network reaches; the page makes no request.  The
summary, the run list and the registry are plain HTML (readable, searchable, and shown
at once); a run's tables and charts are JSON beside it, turned into DOM only when the
run is opened, so a 1,000-run page opens fast.  Every text that reaches the page goes
through :func:`trackbridge.redact.mask` (no password or token of a URL is written).
"""
from __future__ import annotations

import html
import os
from collections.abc import Iterable
from datetime import datetime, timezone
from importlib import resources
from pathlib import Path
from typing import Any

from trackbridge.redact import mask
from trackbridge.report.collect import ReportCollector
from trackbridge.report.views import (
    STATE,
    check_runs,
    plan_experiments,
    plan_run_view,
    registry_view,
    summarise,
)
from trackbridge.sync.check import CheckReport
from trackbridge.sync.plan import Action, Plan
from trackbridge.version import __version__


def _asset(name: str) -> str:
    return (resources.files("trackbridge.report") / "assets" / name).read_text(encoding="utf-8")


def _t(value: Any) -> str:
    """Text for the page: credentials masked, HTML escaped."""
    return html.escape(mask(str(value)), quote=True)


def _num(n: int) -> str:
    return f"{n:,}"


def _table(head: list[str], rows: Iterable[list[str]], numeric_from: int = 1) -> str:
    """An HTML table of already escaped cells; columns from ``numeric_from`` align right."""
    cls = lambda i: ' class="num"' if i >= numeric_from else ""  # noqa: E731
    out = ["<table><thead><tr>", *(f"<th{cls(i)}>{h}</th>" for i, h in enumerate(head)), "</tr></thead><tbody>"]
    for row in rows:
        out.append("<tr>" + "".join(f"<td{cls(i)}>{c}</td>" for i, c in enumerate(row)) + "</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def _page(title: str, header: str, body: list[str], *, charts: bool) -> str:
    styles = (_asset("uPlot.min.css") if charts else "") + _asset("report.css")
    scripts = (_asset("uPlot.iife.min.js") + "\n" if charts else "") + _asset("report.js")
    return "".join([
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_t(title)}</title><style>{styles}</style></head><body>",
        header,
        *body,
        f"<footer>Written by trackbridge {_t(__version__)}. Charts drawn with uPlot (MIT licence). "
        "This page makes no network request.</footer>",
        f"<script>{scripts}</script></body></html>\n",
    ])


def _header(kind: str, source: str, destination: str, verdict: str, ok: bool) -> str:
    now = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<h1>trackbridge {kind} report</h1>"
            f'<p class="meta"><b>source</b> {_t(source)} &nbsp;→&nbsp; <b>destination</b> {_t(destination)}'
            f" &nbsp;·&nbsp; {now}</p>"
            f'<div class="verdict {"ok" if ok else "fail"}">{_t(verdict)}</div>')


def _run_list(rows: list[str], count: int, only_label: str) -> list[str]:
    return [f"<h2>Runs ({_num(count)})</h2>",
            '<div class="controls"><input type="search" id="filter" placeholder="filter runs: name, id, experiment, '
            'detail…" aria-label="filter runs">'
            f'<label><input type="checkbox" id="only"> {_t(only_label)}</label><span id="shown"></span></div>',
            *rows]


def _run_row(i: int, state: str, badge: str, label: str, ids: str, note: str, search: str, body: str = "") -> str:
    return (f'<details class="run" data-i="{i}" data-state="{state}" data-text="{_t(search.lower())}">'
            f'<summary><span class="badge {badge}">{_t(badge)}</span><b>{_t(label)}</b>'
            f'<span class="ids">{_t(ids)}</span><span class="note">{_t(note)}</span></summary>'
            f'<div class="body">{body}</div></details>')


# -- check ------------------------------------------------------------------------


def render_check(report: CheckReport, collector: ReportCollector, *, source: str, destination: str) -> str:
    """The check report's HTML."""
    runs = check_runs(report, collector.runs)
    summary = summarise(runs, collector.models)
    counts = report.to_json()["counts"]
    verdict = ("every run and registered model is equal" if report.ok else
               f"{counts['differ']} differ, {counts['missing']} missing at the destination, {counts['error']} "
               f"could not be checked, {counts['equal']} equal")
    s, d = summary.source, summary.destination
    totals = [["runs", s.runs, d.runs], ["metric points", s.points, d.points], ["params", s.params, d.params],
              ["artifacts", s.artifacts, d.artifacts], ["logged models", s.models, d.models],
              ["registered models", s.registered, d.registered], ["registry versions", s.versions, d.versions]]
    body = ["<h2>Summary</h2>",
            _table(["", "source", "destination"], ([_t(a), _num(b), _num(c)] for a, b, c in totals))]
    if summary.uncounted_series:
        body.append(f'<p class="meta">{_num(summary.uncounted_series)} source metric series have no copy at the '
                    "destination (in missing runs, or missing from a run): check does not read them, so their "
                    "points are not counted above.</p>")
    states = ["equal", "differs", "missing", "error", "declared"]
    body.append("<h3>Per experiment</h3>" + _table(
        ["experiment", "runs", *states],
        ([_t(name), *(_num(exp.get(k, 0)) for k in ["runs", *states])]
         for name, exp in sorted(summary.experiments.items()))))
    if collector.models:
        body.append(_registry(collector))
    rows = []
    for i, run in enumerate(runs):
        f = run.finding
        note = "; ".join(x for x in (f"{len(f.details)} difference(s)" if f.details else "",
                                     f"{run.declared} declared transformation(s)" if run.declared else "") if x)
        ids = f"{f.src_id} → {f.dst_id}" if f.dst_id else f.src_id
        search = " ".join([f.label, ids, STATE[f.symbol], *f.details])[:2000]
        rows.append(_run_row(i, STATE[f.symbol], STATE[f.symbol], f.label, ids, note, search))
        rows.append(f'<script type="application/json" id="d{i}">{run.view}</script>')
    body += _run_list(rows, len(runs), "differs only")
    return _page("trackbridge check report", _header("check", source, destination, verdict, report.ok), body,
                 charts=True)


def _registry(collector: ReportCollector) -> str:
    """Registered models: each source version beside its copy; differing cells marked."""
    run_map = {src_id: r.finding.dst_id for src_id, r in collector.runs.items()}
    out = ["<h2>Registry</h2>"]
    head = "".join(f"<th>{h}</th>" for h in ("version", "run", "stage", "aliases", "description"))
    for model in sorted(collector.models, key=lambda m: m.src.name):
        view = registry_view(model, run_map, stages=collector.stages, reserved_aliases=collector.reserved_aliases)
        out.append(f'<div class="registry-model"><h3><span class="badge {view["state"]}">{view["state"]}</span>'
                   f'{_t(view["name"])}</h3>')
        if view["details"]:
            out.append('<ul class="details">' + "".join(f"<li>{_t(x)}</li>" for x in view["details"]) + "</ul>")
        out.append('<table class="cmp"><thead><tr><th colspan="5">source</th><th colspan="5">destination</th></tr>'
                   f"<tr>{head}{head}</tr></thead><tbody>")
        for row in view["rows"]:
            src, dst = row["src"] or [None] * 5, row["dst"] or [None] * 5
            tds = [_registry_cell(j, value, False) for j, value in enumerate(src)]
            tds += [_registry_cell(j, value, bad) for j, (value, bad) in enumerate(zip(dst, row["bad"]))]
            out.append(f'<tr class="{row["state"]}">' + "".join(tds) + "</tr>")
        out.append("</tbody></table></div>")
    return "".join(out)


def _registry_cell(column: int, value: str | None, bad: bool) -> str:
    """One cell of the registry table; a run id shortened (whole in its tooltip)."""
    cls = ("bad " if bad else "") + ("none" if value is None else "val") + (" desc" if column == 4 else "")
    if value is None:
        return f'<td class="{cls}">—</td>'
    if column == 1 and len(value) > 12:
        return f'<td class="{cls}" title="{_t(value)}">{_t(value[:10])}…</td>'
    return f'<td class="{cls}">{_t(value)}</td>'


# -- plan -------------------------------------------------------------------------


def render_plan(plan: Plan, renames: dict[str, str], *, source: str, destination: str) -> str:
    """The plan report's HTML: what would be sent, and every declared transformation."""
    totals = plan.totals()
    writes = sum(1 for r in plan.runs if r.action.writes)
    verdict = (f"{plan.mode}: {writes} run(s) to write, {totals['unchanged']} unchanged, "
               f"{totals['errors']} error(s)")
    shown = {k: f"{v:,}" for k, v in totals.items() if k != "points_exact"}
    if not totals["points_exact"]:
        shown["points"] = f"~{totals['points']:,} (estimate from the last step of each series; --exact-points counts)"
    body = ["<h2>Summary</h2>", _table(["", "count"], ([_t(k.replace("_", " ")), _t(v)] for k, v in shown.items()))]
    actions = [a.value for a in Action]
    body.append("<h3>Per experiment</h3>" + _table(
        ["experiment", "runs", *actions, "declared"],
        ([_t(name), *(_num(exp.get(k, 0)) for k in ["runs", *actions, "declared"])]
         for name, exp in sorted(plan_experiments(plan).items()))))
    notes = [*plan.transformations, *(f"experiment {old!r} is named {new!r} at the destination (its naming rules)"
                                      for old, new in renames.items())]
    if notes:
        body.append("<h3>Declared for the whole copy</h3><ul>" + "".join(f"<li>{_t(n)}</li>" for n in notes) + "</ul>")
    if plan.registry:
        rows = []
        for model in plan.registry:
            data = model.to_json()
            versions = ", ".join(f"v{v['src_version']} {v['action']}" + (f" ({v['reason']})" if v["reason"] else "")
                                 for v in data["versions"])
            aliases = ", ".join(f"{a} → v{v}" for a, v in data["aliases"].items())
            stages = ", ".join(f"v{v}: {s}" for v, s in data["stages"].items() if s)
            rows.append([_t(data["name"]), _t(versions or "—"), _t(aliases or "—"), _t(stages or "—"),
                         _t(", ".join(data["remove_aliases"]) or "—")])
        body.append("<h2>Registry</h2>" + _table(["model", "versions", "aliases", "stages", "aliases to remove"],
                                                 rows, numeric_from=99))
    if plan.deletions:
        body.append("<h2>Deletions</h2><ul>" + "".join(
            f"<li>{_t(d.dst_experiment)}/{_t(d.dst.name or d.dst.run_id)} (source run {_t(d.source_run_id)} is gone)"
            "</li>" for d in plan.deletions) + "</ul>")
    ordered = sorted(plan.runs, key=lambda r: (not r.action.writes, r.action.value, r.label))
    rows = []
    for i, run in enumerate(ordered):
        view = plan_run_view(run)
        state = "equal" if run.action is Action.UNCHANGED and not view["declared"] else "differs"
        inner = []
        if view["send"]:
            inner.append("<h4>Would send</h4><ul>" + "".join(f"<li>{_t(x)}</li>" for x in view["send"]) + "</ul>")
            points = f"{view['points']:,}" if view["points_exact"] else f"~{view['points']:,} (estimate)"
            inner.append(f'<p class="meta">metric points: {_t(points)}</p>')
        if view["declared"]:
            inner.append("<h4>Declared transformations</h4>" + "".join(
                ['<table class="cmp declared">', *(f'<tr><td class="what">{_t(w)}</td><td class="key">{_t(k)}</td>'
                                                   f"<td>{_t(why)}</td></tr>" for w, k, why in view["declared"]),
                 "</table>"]))
        if view["duplicates"]:
            inner.append(f'<p class="bad">also copied as {_t(", ".join(view["duplicates"]))}</p>')
        ids = f"{run.src.run_id} → {view['dst_run_id']}" if view["dst_run_id"] else run.src.run_id
        note = f"→ {run.dst_experiment}" + (f"; {len(view['declared'])} declared" if view["declared"] else "")
        search = " ".join([run.label, ids, run.action.value, *view["send"], *(" ".join(r) for r in view["declared"])])
        rows.append(_run_row(i, state, run.action.value, run.label, ids, note, search, "".join(inner)))
    body += _run_list(rows, len(ordered), "changes and declared transformations only")
    return _page("trackbridge plan report", _header("plan", source, destination, verdict, totals["errors"] == 0),
                 body, charts=False)


def write(path: Path, page: str) -> Path:
    """Write the page atomically (a half-written report must not look like a finished one)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, path)
    return path

