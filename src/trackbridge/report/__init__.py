"""``check --report`` / ``plan --report``: one self-contained HTML file a person can look at.

``collect`` gathers what ``check`` sees while it runs (no second read), ``downsample``
keeps each series drawable in bounded memory, ``views`` decides what is shown and
counted, ``render`` lays it out as a page with uPlot and its own script inline
(``assets/``).  Nothing here is imported unless a report is asked for.
"""
from __future__ import annotations

from pathlib import Path

from trackbridge.report.collect import ReportCollector
from trackbridge.report.render import render_check, render_plan, write
from trackbridge.sync.check import CheckReport
from trackbridge.sync.plan import Plan


def write_check_report(path: Path, report: CheckReport, collector: ReportCollector, *,
                       source: str, destination: str) -> Path:
    """Write the report of a check that ran with ``collector``; returns the path."""
    return write(path, render_check(report, collector, source=source, destination=destination))


def write_plan_report(path: Path, plan: Plan, renames: dict[str, str], *, source: str, destination: str) -> Path:
    """Write the report of a plan: what would be sent and every declared transformation."""
    return write(path, render_plan(plan, renames, source=source, destination=destination))


__all__ = ["ReportCollector", "write_check_report", "write_plan_report"]
