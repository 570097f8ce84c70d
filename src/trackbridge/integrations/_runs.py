"""Which run a framework callback logs to, shared by the integrations.

Why a helper: every framework hook has the same choice to make when training begins —
log to the run the caller gave, else to the run already active (the user wrapped training
in ``with tb.start_run(...)``), else to a run of its own — and only a run it started
itself is the callback's to finish when training ends.
"""
from __future__ import annotations

import numbers
from collections.abc import Mapping
from typing import Any

import trackbridge as tb
from trackbridge.facade.run import Run
from trackbridge.model import RunStatus


class RunHolder:
    """The run a callback logs to; finished by the callback only if it started it."""

    def __init__(self, run: Run | None, **start_kwargs: Any) -> None:
        self._given = run
        self._start_kwargs = start_kwargs
        self._current: Run | None = None
        self._owned = False

    def begin(self) -> Run:
        """At training start: the given run, else the active one, else a new run of its own.
        A run chosen by an earlier training that has since finished is not reused."""
        if self._given is None and (self._current is None or self._current.finished):
            active = tb.active_run()
            if active is not None:
                self._current, self._owned = active, False
            else:
                self._current, self._owned = tb.start_run(**self._start_kwargs), True
        return self.run

    @property
    def run(self) -> Run:
        """The run to log to (chosen by :meth:`begin`, called now if it was not yet)."""
        if self._given is not None:
            return self._given
        return self._current if self._current is not None else self.begin()

    @property
    def chosen(self) -> bool:
        """True once there is a run to log to (given, or chosen by :meth:`begin`)."""
        return self._given is not None or self._current is not None

    def end(self, status: RunStatus = RunStatus.FINISHED) -> None:
        """Finish the run if this holder started it (a given or active run is the caller's)."""
        if self._owned and self._current is not None and not self._current.finished:
            self._current.finish(status)


def numeric(values: Mapping[str, Any] | None) -> dict[str, float]:
    """The entries of a framework's ``logs`` dict that are numbers (NumPy/torch scalars
    included, via ``float``); text and arrays are left out rather than refused one by one."""
    out: dict[str, float] = {}
    for key, value in (values or {}).items():
        if isinstance(value, bool):
            out[key] = float(value)
        elif isinstance(value, numbers.Number):
            out[key] = float(value)  # type: ignore[arg-type]
        elif getattr(value, "ndim", None) == 0 or getattr(value, "shape", None) in ((), (1,)):
            try:
                out[key] = float(value)
            except (TypeError, ValueError):
                continue
    return out
