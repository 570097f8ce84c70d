"""The engine takes what a destination can hold from its Features and Limits only:
each loss becomes a recorded transformation that plan lists and check accepts,
and a value the destination did keep is still compared (a tampered one is found)."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, ClassVar

from conformance.sample import T0, write_sample

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import BackendInfo, Features, Limits
from trackbridge.mapping import MappingRecord
from trackbridge.sync.check import Checker
from trackbridge.sync.engine import Options, SyncEngine, target_of
from trackbridge.sync.fit import OVERFLOW_FILE
from trackbridge.sync.plan import Selection
from trackbridge.sync.provenance import SOURCE_PARENT, SOURCE_START_TIME, SOURCE_USER


class Limited(ArchiveBackend):
    """An archive that pretends to be a poorer platform (declared, like any backend)."""

    info: ClassVar[BackendInfo] = BackendInfo(name="limited", target="tests:Limited", path_remote=True)
    features: ClassVar[Features] = replace(
        ArchiveBackend.features.disable("settable_start_time", "settable_user", "nested_runs", "summary",
                                        "notes", "registry", "tag_deletion"),
        strictly_increasing_steps=True, reserved_aliases=frozenset({"latest"}))

    def limits(self) -> Limits:
        return replace(super().limits(), max_tags_per_run=12)

    def writer(self) -> Any:
        writer = super().writer()
        writer.limits = self.limits()
        return writer


def _setup(tmp_path: Path) -> tuple[ArchiveBackend, Limited, Selection]:
    src = ArchiveBackend({"path": str(tmp_path / "src")})
    writer = src.writer()
    sample = write_sample(writer, tmp_path / "files")
    writer.close()
    return ArchiveBackend({"path": str(tmp_path / "src")}), Limited({"path": str(tmp_path / "dst")}), \
        Selection([sample.experiment])


def _check(src: ArchiveBackend, dst: Limited, selection: Selection) -> list[str]:
    report = Checker(src.reader(), dst.reader(), target_of(src, dst, dst.writer().limits)).check(selection)
    return [d for f in report.findings for d in f.details]


def test_what_the_destination_cannot_hold_is_planned_recorded_and_accepted(tmp_path: Path) -> None:
    src, dst, selection = _setup(tmp_path)
    plan = SyncEngine(src, dst, Options(mode="copy", dry_run=True)).plan(selection)
    parent = next(r for r in plan.runs if r.src.name == "parent ✓")
    child = next(r for r in plan.runs if r.src.name == "child")
    record = parent.fitted.record
    assert {"start_time", "user"} <= set(record.kept) and {"summary", "notes"} <= set(record.dropped)
    assert "parent_run_id" in child.fitted.record.kept
    assert any(t.startswith("registry: 1 registered model(s) with 2 version(s) not copied") for t in plan.transformations)
    assert not (tmp_path / "dst").exists()  # a plan writes nothing

    outcome = SyncEngine(src, dst, Options(mode="copy")).run(selection)
    assert outcome.ok, outcome.errors
    runs = {r.name: r for r in dst.reader().list_runs(selection.experiments[0])}
    copied, kid = runs["parent ✓"], runs["child"]
    assert copied.tags[SOURCE_START_TIME] == str(T0) and copied.tags[SOURCE_USER] == "ada"
    assert copied.start_time != T0 and copied.user is None and copied.summary == {} and not copied.notes
    assert kid.parent_run_id is None and kid.tags[SOURCE_PARENT] == parent.src.run_id
    stored = MappingRecord.from_tags(copied.tags)
    assert "metric:odd steps" in stored.dropped  # steps 1 (again) and 3 (backwards) cannot be kept
    assert list(dst.reader().list_registered_models()) == []
    assert _check(src, dst, selection) == []


def test_tags_past_the_limit_are_kept_whole_and_counted_with_trackbridges_own(tmp_path: Path) -> None:
    src, dst, selection = _setup(tmp_path)
    assert SyncEngine(src, dst, Options(mode="copy")).run(selection).ok
    parent = next(r for r in dst.reader().list_runs(selection.experiments[0]) if r.name == "parent ✓")
    assert len(parent.tags) <= 12
    kept = json.loads((dst.reader().download_artifact(parent.run_id, OVERFLOW_FILE, tmp_path / "dl")).read_text())
    assert set(kept) | {k for k in parent.tags if not k.startswith("trackbridge.")} >= {"team", "stage"}


def test_a_kept_value_that_was_tampered_with_is_a_difference(tmp_path: Path) -> None:
    src, dst, selection = _setup(tmp_path)
    assert SyncEngine(src, dst, Options(mode="copy")).run(selection).ok
    parent = next(r for r in dst.reader().list_runs(selection.experiments[0]) if r.name == "parent ✓")
    writer = Limited({"path": str(tmp_path / "dst")}).writer()
    writer.set_tags(parent.run_id, {SOURCE_USER: "mallory"})
    writer.close()
    details = _check(src, dst, selection)
    assert any("user" in d and "mallory" in d for d in details), details


class NoAliasRemoval(ArchiveBackend):
    """An archive whose registry cannot remove aliases (as W&B's offline files)."""

    info: ClassVar[BackendInfo] = BackendInfo(name="no-alias-removal", target="tests:NoAliasRemoval", path_remote=True)
    features: ClassVar[Features] = ArchiveBackend.features.disable("alias_removal")


def test_an_alias_the_destination_cannot_remove_is_planned_kept_and_accepted(tmp_path: Path) -> None:
    src, _limited, selection = _setup(tmp_path)
    dst = NoAliasRemoval({"path": str(tmp_path / "dst")})
    assert SyncEngine(src, dst, Options(mode="copy")).run(selection).ok
    model = next(iter(src.reader().list_registered_models()))
    writer = src.writer()
    writer.delete_model_alias(model.name, "champion")
    writer.close()
    plan = SyncEngine(src, dst, Options(mode="sync", dry_run=True)).plan(selection)
    assert any(t.startswith(f"registry: alias(es) {model.name}@champion removed at the source stay") for t in
               plan.transformations)
    assert SyncEngine(src, dst, Options(mode="sync")).run(selection).ok
    kept = next(m for m in dst.reader().list_registered_models() if m.name == model.name)
    assert ["champion"] in [v.aliases for v in kept.versions]  # kept, as planned
    assert _check(src, dst, selection) == []


def test_the_engine_and_check_release_each_run_they_read_and_close_their_readers(tmp_path: Path, monkeypatch) -> None:
    """Readers that hold something per run (W&B's split series) may drop it once told."""
    from trackbridge.backends.archive.reader import ArchiveReader

    released: list[str] = []
    closed: list[ArchiveReader] = []
    monkeypatch.setattr(ArchiveReader, "release", lambda self, run_id: released.append(run_id), raising=False)
    monkeypatch.setattr(ArchiveReader, "close", lambda self: closed.append(self), raising=False)
    src, dst, selection = _setup(tmp_path)
    src_ids = {r.run_id for r in src.reader().list_runs(selection.experiments[0])}
    outcome = SyncEngine(src, dst, Options(mode="copy", transfers=8)).run(selection)
    assert outcome.ok, outcome.errors
    dst_ids = {r.dst_run_id for r in outcome.results}
    assert sorted(released) == sorted(src_ids | dst_ids) and len(released) == len(src_ids) * 2
    assert len(closed) == 2

    released.clear()
    assert not _check(src, dst, selection)
    assert sorted(released) == sorted(src_ids | dst_ids)
