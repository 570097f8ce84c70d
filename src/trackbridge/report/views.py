"""What a report shows, as plain data: the collected check (or a plan) turned into rows.

Kept apart from the HTML so that what is compared and counted is testable without a
browser, and so the page only lays out what is decided here.  Every table row ends in a
state: :data:`SAME`, :data:`DIFFERS`, :data:`MISSING` (at the destination) or
:data:`EXTRA` (only at the destination); the page marks the cells accordingly.
"""
from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from trackbridge.mapping import param_to_str
from trackbridge.model import ArtifactInfo, LoggedModel, MetricPoint, ModelVersion
from trackbridge.redact import mask, mask_all
from trackbridge.report.data import ModelData, RunData, RunDigest, SeriesData
from trackbridge.sync.check import DIFFERS as SYM_DIFFERS
from trackbridge.sync.check import EQUAL as SYM_EQUAL
from trackbridge.sync.check import ERROR as SYM_ERROR
from trackbridge.sync.check import MISSING as SYM_MISSING
from trackbridge.sync.check import CheckReport
from trackbridge.sync.models import model_key, pair_models
from trackbridge.sync.plan import Plan, RunPlan
from trackbridge.sync.registry import dest_aliases, dest_versions_by_source

SAME, DIFFERS, MISSING, EXTRA = 0, 1, 2, 3
#: how a finding's symbol reads on the page, and the order runs are listed in (differing first).
STATE = {SYM_DIFFERS: "differs", SYM_ERROR: "error", SYM_MISSING: "missing", SYM_EQUAL: "equal"}
ORDER = {SYM_DIFFERS: 0, SYM_ERROR: 1, SYM_MISSING: 2, SYM_EQUAL: 3}


def _state(key: str, expected: dict[str, Any], found: dict[str, Any]) -> int:
    if key not in found:
        return MISSING
    if key not in expected:
        return EXTRA
    return SAME if expected[key] == found[key] else DIFFERS


def _round(value: float) -> float:
    """Six significant digits: plenty to draw, and a third of the bytes of a full repr."""
    return float(f"{value:.6g}")


def _xy(points: list[MetricPoint]) -> list[list[float]]:
    return [[p.step for p in points], [_round(p.value) for p in points]]


def declared(record_json: dict[str, dict[str, Any]], errors: list[str]) -> list[list[str]]:
    """A mapping record (what ``plan`` declares for a run) as rows: what, key, why."""
    rows = [["renamed", old, f"to {new!r} (the destination's key rules)"]
            for new, old in record_json.get("renamed", {}).items()]
    rows += [["truncated", key, f"{length} characters; the full value is kept as a file"]
             for key, length in record_json.get("truncated", {}).items()]
    rows += [["dropped", key, why] for key, why in record_json.get("dropped", {}).items()]
    rows += [["kept elsewhere", key, where] for key, where in record_json.get("kept", {}).items()]
    rows += [["error", "", error] for error in errors]
    return rows


def series_view(data: SeriesData) -> dict[str, Any]:
    """One chart: both sides downsampled (the destination left out when it draws the same
    points), the true counts, and the example points ``check`` found missing."""
    src, dst = data.source.points(), data.destination.points()
    diff = data.diff
    same = [(p.step, p.value) for p in src] == [(p.step, p.value) for p in dst]
    view: dict[str, Any] = {
        "k": data.key, "s": _xy(src), "d": None if same else _xy(dst),
        "sc": diff.src_count if diff else data.source.count, "dc": diff.dst_count if diff else data.destination.count,
        "nf": [data.source.non_finite, data.destination.non_finite],
        "miss": diff.missing if diff else 0, "extra": diff.extra if diff else 0,
        "x": _xy([p for p in diff.examples if p.value - p.value == 0]) if diff else [[], []],
    }
    return view


def _describe_file(info: ArtifactInfo | None) -> str | None:
    if info is None:
        return None
    size = f"{info.size:,} B" if info.size is not None else "size unknown"
    if not info.digest:
        return size
    return f"{size} · {info.digest[:23]}…" if len(info.digest) > 24 else f"{size} · {info.digest}"


def _describe_model(model: LoggedModel | None) -> str | None:
    if model is None:
        return None
    bits = [model.model_type or "", f"{len(model.params)} params" if model.params else "",
            f"{len(model.metrics)} metrics" if model.metrics else "", model.status or ""]
    return " · ".join(b for b in bits if b) or "(no metadata)"


def _unquoted(value: str | None) -> str | None:
    """A param compared as canonical JSON (destinations that keep types), shown as a person
    typed it: a string without its quotes, anything else as its JSON."""
    if value is None:
        return None
    decoded = json.loads(value)
    return decoded if isinstance(decoded, str) else value


def _mentioned(details: list[str], prefix: str) -> bool:
    return any(d.startswith(prefix) for d in details)


def run_view(run: RunData) -> dict[str, Any]:
    """Everything one run's expanded section shows."""
    details = run.finding.details
    series = [series_view(s) for s in run.series.values()]
    series.sort(key=lambda s: (not (s["miss"] or s["extra"]), s["k"]))  # differing series drawn first
    out: dict[str, Any] = {"details": details, "series": series}
    if run.fitted is not None:
        out["declared"] = declared(run.fitted.record.to_json(), run.fitted.errors)
    if run.fitted is not None and run.dst is not None:
        dst_keys = set(run.dst.metrics) | set(run.dst.system_metrics)
        out["nodst"] = sorted(k for k, d in run.fitted.metric_keys.items() if d not in dst_keys)
        out["onlydst"] = sorted(dst_keys - set(run.fitted.metric_keys.values()))
    elif run.dst is None:
        out["nodst"] = run.src.all_metric_keys()
    json_params = run.fitted is not None and not run.fitted.flat_params
    for kind, (expected, found) in sorted(run.fields.items()):
        shown = _unquoted if kind == "param" and json_params else (lambda v: v)
        out[kind] = [[k, shown(expected.get(k)), shown(found.get(k)), _state(k, expected, found)]
                     for k in sorted(expected.keys() | found.keys())]
    if run.dst is None:
        out["param"] = [[k, param_to_str(k, v), None, MISSING] for k, v in sorted(run.src.params.items())]
    src_files = {a.path: a for a in run.src_files}
    dst_files = {a.path: a for a in run.dst_files}
    out["files"] = []
    for path in sorted(src_files.keys() | dst_files.keys()):
        state = _state(path, src_files, dst_files)
        if state in (SAME, DIFFERS):
            state = DIFFERS if _mentioned(details, f"artifact {path!r}") else SAME
        out["files"].append([path, _describe_file(src_files.get(path)), _describe_file(dst_files.get(path)), state])
    out["media"] = []
    for key in sorted(run.src_media.keys() | run.dst_media.keys()):
        a, b = run.src_media.get(key), run.dst_media.get(key)
        state = MISSING if b is None else EXTRA if a is None else \
            DIFFERS if _mentioned(details, f"media {key!r}") else SAME
        out["media"].append([key, f"{a.kind} · {a.count} points" if a else None,
                             f"{b.kind} · {b.count} points" if b else None, state])
    out["models"] = []
    if run.dst is not None:
        pairs, extra = pair_models(run.src.models, run.dst.models)
        for model, copy in pairs:
            label = f"{model.name} ({model_key(model)})"
            named = _mentioned(details, f"model {model.name!r} ({model_key(model)})")
            state = MISSING if copy is None else DIFFERS if named else SAME
            out["models"].append([label, _describe_model(model), _describe_model(copy), state])
        out["models"] += [[f"{m.name} ({m.model_id or m.artifact_path})", None, _describe_model(m), EXTRA]
                          for m in extra]
    return out


def encode(view: dict[str, Any]) -> str:
    """A run's section as the JSON its ``<script type="application/json">`` block holds:
    every string masked (the series' points are numbers: only their keys are walked),
    and no ``<`` that could close the block early."""
    data = mask_all({k: v for k, v in view.items() if k != "series"})
    data["series"] = [{**s, "k": mask(s["k"])} for s in view["series"]]
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c")


def digest(run: RunData) -> RunDigest:
    """What the report keeps of a run once it is checked: counts and its encoded section."""
    out = RunDigest(run.finding, run.src.experiment)
    if run.fitted is not None:
        out.declared = sum(len(v) for v in run.fitted.record.to_json().values())
    compared = [s.diff for s in run.series.values() if s.diff is not None]
    out.points = sum(d.src_count for d in compared), sum(d.dst_count for d in compared)
    out.uncounted_series = sum(1 for k in run.src.all_metric_keys() if k not in run.series)
    if run.dst is None:
        out.params = len(run.src.params), 0
        out.models = len(run.src.models), 0
    else:
        expected, found = run.fields.get("param", ({}, {}))
        out.params = len(expected), len(found)
        out.artifacts = len(run.src_files), len(run.dst_files)
        out.models = len(run.src.models), len(run.dst.models)
    out.view = encode(run_view(run))
    return out


@dataclass
class Totals:
    """One side's counts for the summary."""

    runs: int = 0
    points: int = 0
    params: int = 0
    artifacts: int = 0
    models: int = 0
    registered: int = 0
    versions: int = 0


@dataclass
class Summary:
    source: Totals = field(default_factory=Totals)
    destination: Totals = field(default_factory=Totals)
    #: source experiment -> state ("equal", "differs", ..., "declared") -> count.
    experiments: dict[str, dict[str, int]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    #: series missing at the destination: their source points were not read, so not counted.
    uncounted_series: int = 0


def summarise(runs: list[RunDigest], models: list[ModelData]) -> Summary:
    summary = Summary()
    s, d = summary.source, summary.destination
    for run in runs:
        exp = summary.experiments[run.experiment]
        exp["runs"] += 1
        exp[STATE[run.finding.symbol]] += 1
        exp["declared"] += run.declared
        s.runs += 1
        d.runs += run.finding.dst_id is not None
        for side, i in ((s, 0), (d, 1)):
            side.points += run.points[i]
            side.params += run.params[i]
            side.artifacts += run.artifacts[i]
            side.models += run.models[i]
        summary.uncounted_series += run.uncounted_series
    for model in models:
        s.registered += 1
        s.versions += len(model.src.versions)
        if model.dst is not None:
            d.registered += 1
            d.versions += len(model.dst.versions)
    return summary


def _version_cells(version: ModelVersion, aliases: list[str], stages: bool) -> list[str]:
    stage = (version.stage or "") if stages else "(not kept)"
    return [version.version, version.run_id or "", stage, ", ".join(sorted(aliases)), version.description or ""]


def registry_view(model: ModelData, run_map: dict[str, str | None], *, stages: bool = True,
                  reserved_aliases: frozenset[str] = frozenset()) -> dict[str, Any]:
    """Source versions beside the destination's copies (version, run, stage, aliases,
    description), each destination cell marked where ``check`` would find it differing:
    the run compared with the copy of the version's run (``run_map``: source run id ->
    destination run id, for the checked runs), stages only where the destination keeps
    them, aliases but those the destination manages itself (``reserved_aliases``).

    Rows: ``{"src": cells | None, "dst": cells | None, "bad": [bool] * 5, "state": str}``,
    state ``""`` (equal), ``differs``, ``missing``, ``extra`` or ``unchecked`` (a version
    of a run that was not checked: check leaves it alone, and so does the page)."""
    copies = dest_versions_by_source(model.dst)
    by_version: dict[str, list[str]] = defaultdict(list)
    for alias, number in dest_aliases(model.dst).items():
        if alias not in reserved_aliases:
            by_version[number].append(alias)
    rows = []
    paired = set()
    for version in model.src.versions:
        copy = copies.get(version.version)
        src = _version_cells(version, [a for a in version.aliases if a not in reserved_aliases], True)
        if version.run_id not in run_map:
            rows.append({"src": src, "dst": None, "bad": [False] * 5, "state": "unchecked"})
            continue
        if copy is None:
            rows.append({"src": src, "dst": None, "bad": [True] * 5, "state": "missing"})
            continue
        paired.add(copy.version)
        dst = _version_cells(copy, by_version[copy.version], stages)
        expected = [dst[0], run_map[version.run_id] or "", src[2] if stages else dst[2], src[3], src[4]]
        bad = [a != b for a, b in zip(expected, dst)]
        rows.append({"src": src, "dst": dst, "bad": bad, "state": "differs" if any(bad) else ""})
    for version in model.dst.versions if model.dst is not None else []:
        if version.version not in paired and version.version not in {c.version for c in copies.values()}:
            rows.append({"src": None, "dst": _version_cells(version, by_version[version.version], stages),
                         "bad": [True] * 5, "state": "extra"})
    return {"name": model.src.name, "state": STATE[model.finding.symbol], "details": model.finding.details,
            "rows": rows}


def check_runs(report: CheckReport, runs: dict[str, RunDigest]) -> list[RunDigest]:
    """The checked runs in the order the page lists them: differing first, then errors,
    missing, equal; by label within each."""
    found = [runs[f.src_id] for f in report.findings if f.kind == "run" and f.src_id in runs]
    return sorted(found, key=lambda r: (ORDER[r.finding.symbol], r.finding.label))


def plan_run_view(run: RunPlan) -> dict[str, Any]:
    """One planned run: its action, what it would send, and what is declared for it."""
    return {"action": run.action.value, "label": run.label, "dst_experiment": run.dst_experiment,
            "src_run_id": run.src.run_id, "dst_run_id": run.dst.run_id if run.dst else None,
            "send": run.delta.describe() if run.action.writes else [],
            "points": run.points, "points_exact": run.points_exact,
            "declared": declared(run.fitted.record.to_json(), run.fitted.errors),
            "duplicates": run.duplicates}


def plan_experiments(plan: Plan) -> dict[str, dict[str, int]]:
    """Source experiment -> action -> runs, and the number of declared transformations."""
    out: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for run in plan.runs:
        exp = out[run.src.experiment]
        exp["runs"] += 1
        exp[run.action.value] += 1
        exp["declared"] += sum(len(v) for v in run.fitted.record.to_json().values())
    return out
