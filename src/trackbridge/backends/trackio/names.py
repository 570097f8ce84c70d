"""Trackio's project names on disk, and the config keys where trackbridge keeps the run
fields trackio has no place for."""
from __future__ import annotations

#: config keys of the run fields Trackio has no column for: its dashboard shows them with
#: the config, and the reader gives them back as the fields (tags, notes, summary, status,
#: end time), so a copy out of Trackio carries them again.
TAGS, NOTES, SUMMARY, STATUS, END_TIME, MODELS = (
    f"trackbridge.{k}" for k in ("tags", "notes", "summary", "status", "end_time", "models"))


def canonical_project_name(project: str) -> str:
    """The name of ``project``'s database file, as trackio derives it (``utils.
    canonical_project_name``: only ``[A-Za-z0-9_-]``, ``default`` when nothing is left)."""
    safe = "".join(c for c in project if c.isalnum() or c in ("-", "_")).rstrip()
    return safe or "default"
