"""``define_metric`` as W&B keeps it (``MetricRecord``) and as trackbridge carries it.

Why it matters: ``run.define_metric("val/*", step_metric="epoch")`` makes ``epoch``
the x-axis of every ``val/...`` series.  W&B's ``_step`` is only a row counter (it
grows with every ``log`` call), so a reader that took ``_step`` as the step would give
``val/loss`` the steps 4, 9, 14 where the user plotted 0, 1, 2.  So:

* a series' step is the value its step metric has in the same row (the SDK copies
  it into every row that logs the series: ``step_sync``), else the last value that
  step metric had, else ``_step``;
* the definitions themselves travel as the run tag :data:`DEFINE_METRIC_TAG`: a JSON
  list of ``{"name"|"glob", "step_metric", "summary", "goal", "hidden"}`` (only the
  fields set), the W&B field carried as a tag the way ``wandb.group`` is.  Other
  platforms keep the tag; a writer into W&B stores it back (config
  ``trackbridge.tags``) and declares the summaries and goals it names again, so
  ``summary="min"`` still gives W&B's ``{"min": ...}`` summary there.

Rows a trackbridge writer made carry the canonical step in ``trackbridge/step``,
which wins over every definition (the canonical step already is the x-axis value).
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from fnmatch import fnmatchcase
from typing import Any

#: run tag holding the run's ``define_metric`` definitions (JSON list, see module doc).
DEFINE_METRIC_TAG = "wandb.define_metric"


def carried(definitions: list[dict[str, Any]]) -> dict[str, str]:
    """``RunRecord.carried`` for a run's definitions: custom x-axes travel as the steps."""
    axes = sorted({d["step_metric"] for d in definitions if d.get("step_metric")})
    if not axes:
        return {}
    return {"define_metric": f"series plotted against {', '.join(axes)} (define_metric step_metric) carry that "
                             f"value as their step; the definitions travel in tag {DEFINE_METRIC_TAG}"}
#: ``MetricSummary`` fields, in the order W&B lists them.
SUMMARY_FIELDS = ("min", "max", "mean", "best", "last", "none", "copy", "first")
_GOALS = {1: "minimize", 2: "maximize"}


def definition(rec: Any) -> dict[str, Any] | None:
    """A ``MetricRecord`` as the JSON the tag holds, ``None`` for one that defines nothing
    of the user's (a record only updating ``_control``)."""
    out: dict[str, Any] = {}
    if rec.name:
        out["name"] = rec.name
    elif rec.glob_name:
        out["glob"] = rec.glob_name
    else:
        return None
    if rec.step_metric:
        out["step_metric"] = rec.step_metric
    if rec.HasField("summary"):
        summary = [f for f in SUMMARY_FIELDS if getattr(rec.summary, f)]
        if summary:
            out["summary"] = summary
    if rec.goal in _GOALS:
        out["goal"] = _GOALS[rec.goal]
    if rec.options.hidden:
        out["hidden"] = True
    return out


def fill(rec: Any, spec: Mapping[str, Any], step_metric: str | None = None) -> None:
    """Set a ``MetricRecord`` from a definition (``step_metric`` replaces the one given)."""
    if spec.get("name"):
        rec.name = str(spec["name"])
    else:
        rec.glob_name = str(spec.get("glob") or "")
    step = step_metric if step_metric is not None else spec.get("step_metric")
    if step:
        rec.step_metric = str(step)
        rec.options.step_sync = True
    for name in spec.get("summary") or ():
        if name in SUMMARY_FIELDS:
            setattr(rec.summary, name, True)
    goal = {v: k for k, v in _GOALS.items()}.get(str(spec.get("goal") or ""))
    if goal:
        rec.goal = goal
    if spec.get("hidden"):
        rec.options.hidden = True
    rec.options.defined = True


def encode_tag(definitions: Iterable[Mapping[str, Any]]) -> str:
    """The tag's text: one definition per name or glob (the last given wins), in order."""
    merged: dict[str, dict[str, Any]] = {}
    for spec in definitions:
        ident = ("name:" + spec["name"]) if spec.get("name") else "glob:" + str(spec.get("glob"))
        merged.pop(ident, None)
        merged[ident] = dict(spec)
    return json.dumps(list(merged.values()), separators=(",", ":"), sort_keys=True)


def decode_tag(text: str | None) -> list[dict[str, Any]]:
    """The definitions a tag holds (nothing for a tag that is not such a list)."""
    try:
        value = json.loads(text) if text else []
    except ValueError:
        return []
    return [d for d in value if isinstance(d, dict) and (d.get("name") or d.get("glob"))] if isinstance(value, list) else []


class StepRules:
    """Which key is the x-axis of which series, decided once per key.

    W&B's order: a definition by exact name first, then the globs in the order they
    were defined (the first that matches)."""

    def __init__(self, definitions: Iterable[Mapping[str, Any]], ignore: str | None = None) -> None:
        self.names: dict[str, str] = {}
        self.globs: list[tuple[str, str]] = []
        for spec in definitions:
            step = spec.get("step_metric")
            if not step or step == ignore:
                continue
            if spec.get("name"):
                self.names[str(spec["name"])] = str(step)
            elif spec.get("glob"):
                self.globs.append((str(spec["glob"]), str(step)))
        self._cache: dict[str, str | None] = {}
        #: the step metrics themselves (their values are needed in every row)
        self.step_keys = frozenset([*self.names.values(), *(s for _g, s in self.globs)])

    def __bool__(self) -> bool:
        return bool(self.step_keys)

    def step_metric(self, key: str) -> str | None:
        """The key whose value is ``key``'s step, ``None`` for W&B's ``_step``."""
        found = self._cache.get(key, "")
        if found == "":
            found = self.names.get(key)
            if found is None:
                found = next((s for g, s in self.globs if fnmatchcase(key, g)), None)
            if found == key:  # a step metric is not its own x-axis
                found = None
            self._cache[key] = found
        return found


class Aggregate:
    """A series' running ``summary="min,max,..."`` values, as W&B's summary keeps them."""

    __slots__ = ("fields", "goal", "values")

    def __init__(self, fields: Iterable[str], goal: str | None) -> None:
        self.fields = [f for f in fields if f in ("min", "max", "mean", "best", "last", "first")]
        self.goal = goal
        self.values: dict[str, float] = {}
        self.values["_n"] = 0.0

    def add(self, value: float) -> None:
        v, n = self.values, self.values["_n"]
        if n == 0:
            v["first"] = v["min"] = v["max"] = v["_sum"] = value
        else:
            v["min"], v["max"] = min(v["min"], value), max(v["max"], value)
            v["_sum"] += value
        v["last"] = value
        v["_n"] = n + 1

    def summary(self) -> dict[str, float]:
        v, n = self.values, self.values["_n"]
        if not n:
            return {}
        out: dict[str, float] = {}
        for f in self.fields:
            if f == "mean":
                out["mean"] = v["_sum"] / n
            elif f == "best":
                out["best"] = v["max"] if self.goal == "maximize" else v["min"]
            else:
                out[f] = v[f]
        return out


def aggregates_for(definitions: Iterable[Mapping[str, Any]]) -> list[tuple[str | None, str | None, list[str], str | None]]:
    """(name, glob, summary fields, goal) of the definitions that ask for a summary other
    than W&B's default last value."""
    out = []
    for spec in definitions:
        fields = [f for f in spec.get("summary") or () if f in SUMMARY_FIELDS]
        if fields and fields != ["last"]:
            out.append((spec.get("name"), spec.get("glob"), fields, spec.get("goal")))
    return out


def summary_spec(specs: list[tuple[str | None, str | None, list[str], str | None]],
                 key: str) -> tuple[list[str], str | None] | None:
    """The summary fields and goal ``key`` gets (exact name first, then globs)."""
    for name, _glob, fields, goal in specs:
        if name == key:
            return fields, goal
    for name, glob, fields, goal in specs:
        if name is None and glob and fnmatchcase(key, glob):
            return fields, goal
    return None
