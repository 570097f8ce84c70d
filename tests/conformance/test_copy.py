"""Copies into and out of every backend, through the one engine: check passes, a
second copy adds nothing, copies are found again through their provenance tags
alone, the completion marker is written last, model versions are not doubled,
and a copy killed at each crash point is finished by the next one."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cases import Case, seed_sample, writable
from sample import write_sample

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import Backend
from trackbridge.sync.check import Checker
from trackbridge.sync.engine import Options, SyncEngine, target_of
from trackbridge.sync.plan import Action, Selection
from trackbridge.sync.provenance import COMPLETE


class Recording:
    """A writer proxy that records every call, to prove the order of writes."""

    def __init__(self, writer: Any) -> None:
        self._writer, self.calls = writer, []

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._writer, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            self.calls.append((name, args, kwargs))
            return attr(*args, **kwargs)

        return call


def _source(tmp_path: Path, with_model: bool = True) -> tuple[ArchiveBackend, Any]:
    src = ArchiveBackend({"path": str(tmp_path / "source-archive")})
    writer = src.writer()
    sample = write_sample(writer, tmp_path / "sample-files", with_model=with_model)
    writer.close()
    return ArchiveBackend({"path": str(tmp_path / "source-archive")}), sample


def _check(src: Backend, dst: Backend, selection: Selection) -> list[str]:
    checker = Checker(src.reader(), dst.reader(), target_of(src, dst, dst.writer().limits))
    report = checker.check(selection)
    return [f"{f.symbol} {f.label}: {d}" for f in report.findings if f.symbol != "=" for d in f.details or ["-"]]


def _has_registry(backend: Backend) -> bool:
    return "registry" not in backend.features.lacks()


def test_copy_into_the_backend_checks_equal_and_a_second_copy_adds_nothing(backend: Backend, tmp_path: Path) -> None:
    writable(backend)
    src, sample = _source(tmp_path, with_model=_has_registry(backend))
    selection = Selection(experiments=[sample.experiment])
    first = SyncEngine(src, backend, Options(mode="copy")).run(selection)
    assert first.ok, first.errors
    assert first.plan.count(Action.CREATE) == 2
    assert _check(src, backend, selection) == []
    # a fresh engine with no ledger finds the copies by their provenance tags alone
    again = SyncEngine(src, backend, Options(mode="copy")).run(selection)
    assert again.ok and again.plan.count(Action.UNCHANGED) == 2 and not again.results
    runs = list(backend.reader().list_runs(sample.experiment))
    assert len(runs) == 2
    if _has_registry(backend):
        model = next(m for m in backend.reader().list_registered_models() if m.name == sample.model)
        assert len(model.versions) == 2


def test_the_completion_marker_is_written_last(backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writable(backend)
    src, sample = _source(tmp_path, with_model=False)
    recording = Recording(backend.writer())
    monkeypatch.setattr(backend, "writer", lambda: recording)
    outcome = SyncEngine(src, backend, Options(mode="copy", transfers=1)).run(Selection([sample.experiment]))
    assert outcome.ok, outcome.errors
    per_run: dict[str, list[tuple[str, Any]]] = {}
    current = None
    for name, args, kwargs in recording.calls:
        if name == "create_run":
            current = object()
            per_run[str(id(current))] = []
        if current is not None and name not in ("flush", "close", "ensure_experiment"):
            per_run[str(id(current))].append((name, args[1] if name == "set_tags" else None))
    assert len(per_run) == 2
    for calls in per_run.values():
        name, tags = calls[-1]
        assert name == "set_tags" and list(tags)[-1] == COMPLETE
        assert all(COMPLETE not in (t or {}) or not t[COMPLETE] for _n, t in calls[:-1])


def test_copy_out_of_the_backend_checks_equal(case: Case, backend: Backend, tmp_path: Path) -> None:
    sample = seed_sample(case, backend, tmp_path / "files", with_model=_has_registry(backend))
    dst = ArchiveBackend({"path": str(tmp_path / "out-archive")})
    selection = Selection(experiments=[sample.experiment])
    outcome = SyncEngine(backend, dst, Options(mode="copy")).run(selection)
    assert outcome.ok, outcome.errors
    assert _check(backend, dst, selection) == []
    again = SyncEngine(backend, dst, Options(mode="copy")).run(selection)
    assert again.plan.count(Action.UNCHANGED) == 2


CRASH_POINTS = ["after_create", "mid_metrics", "after_metrics", "mid_artifacts", "before_complete"]


@pytest.mark.slow
@pytest.mark.parametrize("point", CRASH_POINTS)
def test_a_copy_killed_at_each_crash_point_is_finished_by_the_next(case: Case, backend: Backend, tmp_path: Path,
                                                                    point: str) -> None:
    writable(backend)
    if case.cli is None:
        pytest.skip(f"{case.id} cannot be reached from a child process")
    src, sample = _source(tmp_path, with_model=False)
    dst_arg, env_extra = case.cli(backend)
    env = {**os.environ, **env_extra, "TRACKBRIDGE_CRASH_AT": point}
    cmd = [str(Path(sys.executable).with_name("trackbridge")), "copy", f"dir:{src.path}", dst_arg,
           "--experiment", sample.experiment, "--transfers", "1"]
    crashed = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert crashed.returncode == 137, crashed.stderr[-2000:]
    env.pop("TRACKBRIDGE_CRASH_AT")
    finished = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert finished.returncode == 0, finished.stderr[-2000:]
    fresh = type(backend)(backend.options)  # a new instance: nothing cached from before the child processes
    selection = Selection(experiments=[sample.experiment])
    assert _check(src, fresh, selection) == []
    assert len(list(fresh.reader().list_runs(sample.experiment))) == 2
