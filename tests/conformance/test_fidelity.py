"""What issue 14 found lost, through every backend: two logged models of one name with
their own bytes and metadata, media series (histograms per epoch, captioned images),
artifact metadata and a version's stage.  Each is carried natively, or as the recorded
transformation the backend's ``Features`` declare, and ``check`` passes either way; a
second copy adds nothing."""
from __future__ import annotations

from pathlib import Path

from cases import writable
from sample import write_rich_sample

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import Backend
from trackbridge.sync.check import Checker
from trackbridge.sync.engine import Options, SyncEngine, target_of
from trackbridge.sync.plan import Action, Planner, Selection
from trackbridge.sync.rich import RichView


def _source(tmp_path: Path) -> tuple[ArchiveBackend, str, str]:
    src = ArchiveBackend({"path": str(tmp_path / "rich-source")})
    writer = src.writer()
    sample = write_rich_sample(writer, tmp_path / "rich", src.features)
    writer.close()
    return ArchiveBackend({"path": str(tmp_path / "rich-source")}), sample.experiment, sample.model


def test_rich_run_copies_in_checks_equal_and_declares_what_it_moves(backend: Backend, tmp_path: Path) -> None:
    writable(backend)
    src, experiment, model = _source(tmp_path)
    selection = Selection(experiments=[experiment])
    target = target_of(src, backend, backend.writer().limits)
    plan = Planner(src.reader(), backend.reader(), target, mode="copy").plan(selection)
    (run,) = plan.runs
    kept = run.fitted.record.kept
    for key, series in run.media.items():  # native or a declared layout, never silent
        assert (series.kind in backend.features.media_kinds) != (f"media:{key}" in kept), (key, kept)
    assert ("artifact_meta" in kept) == (not backend.features.artifact_meta)
    assert ("models:metadata" in run.fitted.record.dropped) == (not backend.features.model_metadata)

    outcome = SyncEngine(src, backend, Options(mode="copy")).run(selection)
    assert outcome.ok, outcome.errors
    report = Checker(src.reader(), backend.reader(), target).check(selection)
    assert [d for f in report.findings for d in f.details] == [] and report.ok

    dst_run = next(iter(backend.reader().list_runs(experiment)))
    reader = backend.reader()
    assert len(dst_run.models) == 2  # two models named "model" stay two
    view = RichView(reader)
    media = view.media(dst_run, list(reader.list_artifacts(dst_run.run_id)))
    assert {k: (s.kind, s.count) for k, s in media.items()} == {"weights": ("histogram", 3),
                                                                 "val/examples": ("image", 2)}
    assert not any(k.startswith(("weights", "val/examples")) for k in dst_run.metrics)  # never fake series
    if model and backend.features.stages:
        versions = next(m for m in reader.list_registered_models() if m.name == model).versions
        assert sorted(v.stage or "" for v in versions) == ["Archived", "Production"]

    again = SyncEngine(src, backend, Options(mode="copy")).run(selection)
    assert again.ok and again.plan.count(Action.UNCHANGED) == 1 and not again.results
