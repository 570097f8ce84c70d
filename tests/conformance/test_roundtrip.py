"""Every canonical field written through a backend's writer is read back equal by its
reader, unless the backend's Features say the platform cannot hold it (skipped by
the features, never by hand)."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
from cases import Case, held, needs, seed_sample, writable
from sample import T0, Sample

from trackbridge.backends.base import Backend
from trackbridge.model import RunRecord, RunStatus


@pytest.fixture
def written(case: Case, backend: Backend, tmp_path: Path) -> tuple[Sample, dict[str, RunRecord]]:
    sample = seed_sample(case, backend, tmp_path, with_model=backend.features.registry.value != "none")
    runs = {r.name: r for r in backend.reader().list_runs(sample.experiment)}
    return sample, runs


def test_runs_are_listed_with_name_status_and_params(written: tuple[Sample, dict[str, RunRecord]],
                                                     backend: Backend) -> None:
    sample, runs = written
    assert set(runs) == {"parent ✓", "child"}
    parent = runs["parent ✓"]
    if "run_status" not in backend.features.lacks():
        assert parent.status == RunStatus.FINISHED and runs["child"].status == RunStatus.FAILED
    params = parent.params
    assert backend.reader().get_run(parent.run_id).run_id == parent.run_id
    if sample.params is not None:  # as the vendor's own tool shaped them (seeded)
        assert params == sample.params
        return
    limits = backend.writer().limits
    if limits.flat_params:
        assert params["lr"] == "0.01" and params[f"optimizer{limits.nested_separator}name"] == "adam"
    else:
        assert params["lr"] == 0.01 and params["optimizer"] == {"name": "adam", "beta": 0.9}


def test_tags_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend) -> None:
    held(backend, "key_value_tags")
    _sample, runs = written
    assert runs["parent ✓"].tags["team"] == "vision" and runs["child"].tags["fold"] == "1"


def test_times_and_user_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend) -> None:
    needs(backend, "settable_start_time", "settable_end_time", "settable_user")
    parent = written[1]["parent ✓"]
    assert (parent.start_time, parent.end_time, parent.user) == (T0, T0 + 60_000, "ada")


def test_nested_runs_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend) -> None:
    needs(backend, "nested_runs")
    runs = written[1]
    assert runs["child"].parent_run_id == runs["parent ✓"].run_id


def test_labels_notes_and_summary_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend) -> None:
    needs(backend, "labels", "notes", "summary")
    parent = written[1]["parent ✓"]
    labels = set(parent.labels) | {k for k, v in parent.tags.items() if v == ""}
    assert {"baseline", "gpu"} <= labels
    assert parent.notes == "the parent run\nsecond line"
    assert parent.summary == {"best_acc": 0.93, "epochs": 12}


def test_history_is_whole_in_order_and_keeps_nan_and_inf(written: tuple[Sample, dict[str, RunRecord]],
                                                         backend: Backend) -> None:
    sample, runs = written
    reader = backend.reader()
    parent = runs["parent ✓"]
    for key, expected in sample.series.items():
        got = [p for page in reader.iter_metric_history(parent.run_id, key, page_size=1000) for p in page]
        assert len(got) == len(expected), key
        as_keys = lambda points: sorted(p.key() for p in points)  # noqa: E731
        assert as_keys(got) == as_keys(expected), key
        if key == "loss":  # a series logged in step order comes back in that order, specials kept
            assert [p.step for p in got] == [p.step for p in expected]
            assert math.isnan(got[3].value) and got[5].value == math.inf and got[8].value == -math.inf
    assert parent.metrics["loss"].step == sample.series["loss"][-1].step


def test_system_metrics_are_kept_apart(written: tuple[Sample, dict[str, RunRecord]], backend: Backend) -> None:
    needs(backend, "system_metrics")
    parent = written[1]["parent ✓"]
    assert "system/cpu" in parent.system_metrics and "system/cpu" not in parent.metrics


def test_artifacts_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend, tmp_path: Path) -> None:
    held(backend, "artifacts")
    parent = written[1]["parent ✓"]
    reader = backend.reader()
    paths = {a.path for a in reader.list_artifacts(parent.run_id)}
    sample = written[0]
    assert (sample.files if sample.files is not None else {"report.txt", "sub/data.bin"}) <= paths
    got = reader.download_artifact(parent.run_id, "sub/data.bin", tmp_path / "dl")
    assert got.read_bytes() == bytes(range(256)) * 4


def test_models_and_registry_round_trip(written: tuple[Sample, dict[str, RunRecord]], backend: Backend,
                                        tmp_path: Path) -> None:
    needs(backend, "registry")
    sample, runs = written
    parent = runs["parent ✓"]
    reader = backend.reader()
    assert [m.name for m in parent.models] == ["model"]
    folder = reader.download_model(parent.run_id, parent.models[0], tmp_path / "m")
    assert (folder / "weights.bin").read_bytes() == b"\x00\x01" * 100
    model = next(m for m in reader.list_registered_models() if m.name == sample.model)
    assert model.description == "a model ✓" and len(model.versions) == 2
    assert all(v.run_id == parent.run_id for v in model.versions)
    assert model.versions[-1].aliases == ["champion"]


def test_limits_are_respected_when_given_more_than_a_batch(backend: Backend) -> None:
    """One call with 2.5 batches of points and params: the writer splits them itself."""
    writable(backend)
    from trackbridge.model import MetricPoint

    writer = backend.writer()
    limits = writer.limits
    n = int(min(limits.max_metrics_per_batch, 4000) * 2.5)
    exp = writer.ensure_experiment("conformance limits")
    run = writer.create_run(exp, name="big", start_time=T0)
    writer.log_metrics(run, [("m", MetricPoint(i, float(i), T0 + i)) for i in range(n)])
    params = {f"p{i}": i for i in range(int(min(limits.max_params_per_batch, 200) * 2.5))}
    writer.log_params(run, params if not limits.flat_params else {k: str(v) for k, v in params.items()})
    writer.finish_run(run, RunStatus.FINISHED, T0 + n)
    writer.close()
    reader = backend.reader()
    got = [p for page in reader.iter_metric_history(run, "m") for p in page]
    assert [p.step for p in got] == list(range(n))
    assert len(reader.get_run(run).params) == len(params)
