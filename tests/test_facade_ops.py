"""The facade ops other platforms have (labels, summary values, notes, W&B's ``run.log``)
into a real embedded MLflow store, their validation, and their round trip through the
spool and replay."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.backends import get_backend
from trackbridge.errors import InvalidKeyError, InvalidValueError
from trackbridge.facade.ops import Applier, RunState, compact
from trackbridge.facade.replay import replay_spool
from trackbridge.facade.spool import Spool

NOTE_TAG = "mlflow.note.content"
SUMMARY_TAG = "trackbridge.summary"


@pytest.fixture(scope="module")
def shared_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('ops-store') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def store(shared_uri: str, monkeypatch: pytest.MonkeyPatch) -> MlflowClient:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_uri)
    yield MlflowClient(shared_uri)
    if tb.active_run() is not None:
        tb.active_run().finish()


def _remote(run: tb.Run) -> str:
    remote = run.remote_ids["mlflow"]
    assert remote is not None
    return remote


def test_labels_summary_notes_land_as_mlflow_tags(store: MlflowClient) -> None:
    with tb.start_run(project="ops-mlflow", name="r", tags={"team": "vision"}) as run:
        run.add_labels(["baseline", "v2"])
        run.add_labels("baseline")  # a bare str is one label; repeats are one label
        tb.add_labels(["gpu"])
        run.log_summary({"best_acc": 0.93, "epochs": 12, "note": "ok", "nan": float("nan"), "nested": {"a": [1, 2]}})
        tb.log_summary({"best_acc": 0.95})  # merged, last value wins
        run.set_notes("first")
        tb.set_notes("# Final notes\nwith *markdown*")
    tags = store.get_run(_remote(run)).data.tags
    assert {k: tags[k] for k in ("baseline", "v2", "gpu")} == {"baseline": "", "v2": "", "gpu": ""}
    assert tags["team"] == "vision"
    assert tags[NOTE_TAG] == "# Final notes\nwith *markdown*"
    summary = json.loads(tags[SUMMARY_TAG])
    assert summary["best_acc"] == 0.95 and summary["epochs"] == 12 and summary["note"] == "ok"
    assert math.isnan(summary["nan"]) and summary["nested"] == {"a": [1, 2]}


def test_summary_merges_across_flushes(store: MlflowClient) -> None:
    with tb.start_run(project="ops-mlflow", name="merge") as run:
        run.log_summary({"a": 1, "b": 2})
        assert run.flush(30)
        run.log_summary({"b": 3, "c": None})
    assert json.loads(store.get_run(_remote(run)).data.tags[SUMMARY_TAG]) == {"a": 1, "b": 3, "c": None}


def test_log_is_wandb_log_with_an_auto_step(store: MlflowClient) -> None:
    with tb.start_run(project="ops-mlflow", name="wandb-style") as run:
        run.log({"loss": 1.0, "acc": 0.1})  # step 0
        run.log({"loss": 0.5})  # step 1
        run.log({"loss": 0.25}, step=10)  # explicit: the counter moves past it
        tb.log({"loss": 0.125, "val": {"loss": 0.3}})  # step 11, nested -> val.loss
        run.log({"late": 7.0}, step=3)  # an earlier step: the counter stays at 12
        run.log({"loss": 0.0625})  # step 12
    remote = _remote(run)
    loss = sorted((m.step, m.value) for m in store.get_metric_history(remote, "loss"))
    assert loss == [(0, 1.0), (1, 0.5), (10, 0.25), (11, 0.125), (12, 0.0625)]
    assert [(m.step, m.value) for m in store.get_metric_history(remote, "val.loss")] == [(11, 0.3)]
    assert [(m.step, m.value) for m in store.get_metric_history(remote, "acc")] == [(0, 0.1)]
    assert [m.step for m in store.get_metric_history(remote, "late")] == [3]


def test_log_and_log_metrics_share_the_step_counter(store: MlflowClient) -> None:
    with tb.start_run(project="ops-mlflow", name="shared") as run:
        run.log_metrics({"x": 1.0})  # step 0
        run.log({"x": 2.0})  # step 1
        run.log_metrics({"x": 3.0})  # step 2
    assert sorted(m.step for m in store.get_metric_history(_remote(run), "x")) == [0, 1, 2]


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda r: r.add_labels([1]), InvalidKeyError, "must be a string"),
        (lambda r: r.add_labels(["ok", None]), InvalidKeyError, "must be a string"),
        (lambda r: r.add_labels([" "]), InvalidKeyError, "empty"),
        (lambda r: r.add_labels({"a": 1}), TypeError, "list of strings"),
        (lambda r: r.add_labels(3), TypeError, "list of strings"),
        (lambda r: r.log_summary({"x": object()}), InvalidValueError, "summary 'x'"),
        (lambda r: r.log_summary({"x": {1, 2}}), InvalidValueError, "summary 'x'"),
        (lambda r: r.log_summary({1: 2}), InvalidKeyError, "summary key"),
        (lambda r: r.log_summary([("a", 1)]), TypeError, "must be a dict"),
        (lambda r: r.set_notes(3), TypeError, "must be a str"),
        (lambda r: r.log({"x": "text"}), InvalidValueError, "not a number"),
        (lambda r: r.log([1.0]), TypeError, "dict of metrics"),
        (lambda r: r.log({"x": 1.0}, step="a"), InvalidValueError, "step must be an integer"),
    ],
)
def test_bad_input_raises_at_the_call_and_logs_nothing(store: MlflowClient, call, error, match) -> None:
    """Under on_error="raise"; the default refuses instead (test_first_day.py)."""
    with tb.start_run(project="ops-bad", name="bad", on_error="raise") as run:
        with pytest.raises(error, match=match):
            call(run)
    data = store.get_run(_remote(run)).data
    assert SUMMARY_TAG not in data.tags and NOTE_TAG not in data.tags and not data.metrics
    assert not any(value == "" for value in data.tags.values()), "no label may have been logged"


def test_numpy_values_are_plain_in_the_summary(store: MlflowClient) -> None:
    np = pytest.importorskip("numpy")
    with tb.start_run(project="ops-mlflow", name="np") as run:
        run.log_summary({"f": np.float32(0.5), "arr": np.arange(3), "i": np.int64(4)})
    assert json.loads(store.get_run(_remote(run)).data.tags[SUMMARY_TAG]) == {"f": 0.5, "arr": [0, 1, 2], "i": 4}


def test_over_long_notes_are_cut_and_recorded(store: MlflowClient) -> None:
    with tb.start_run(project="ops-mlflow", name="long-notes") as run:
        run.set_notes("n" * 9000)
    tags = store.get_run(_remote(run)).data.tags
    assert tags[NOTE_TAG] == "n" * 8000
    assert json.loads(tags["trackbridge.mapping"])["truncated"] == {"notes:notes": 9000}


def test_compact_coalesces_the_new_ops() -> None:
    ops = compact([
        {"op": "labels", "labels": ["a", "b"]},
        {"op": "summary", "summary": {"x": 1}},
        ("m", 0, 1.0, 1),
        {"op": "notes", "notes": "one"},
        {"op": "labels", "labels": ["b", "c"]},
        {"op": "summary", "summary": {"x": 2, "y": 3}},
        {"op": "notes", "notes": "two"},
    ], batch_size=10)
    assert [op["op"] for op in ops] == ["labels", "notes", "metrics", "summary"]
    assert ops[0]["labels"] == ["a", "b", "c"] and ops[1]["notes"] == "two"
    assert ops[3]["summary"] == {"x": 2, "y": 3}


def test_new_ops_round_trip_through_the_spool_and_replay(tmp_path: Path, sqlite_uri: str) -> None:
    """What a down backend leaves on disk is the same op a live send applies: write the
    ops to a spool, read them back through JSON, replay them into a real store."""
    spool = Spool(tmp_path / "spool", "local1")
    spool.append(compact([
        {"op": "create", "experiment": "ops-spool", "name": "spooled", "start_time": 1_000, "parent": None,
         "tags": {}},
        {"op": "labels", "labels": ["offline"]},
        {"op": "summary", "summary": {"best": 0.5, "inf": float("inf"), "words": ["a", "b"]}},
        {"op": "notes", "notes": "kept on disk first"},
        ("loss", 0, 1.0, 1_001),
        ("loss", 1, float("nan"), 1_002),
        {"op": "finish", "status": "FINISHED", "end_time": 2_000},
    ], batch_size=1000))
    backend = get_backend("mlflow", {"tracking_uri": sqlite_uri})
    state = RunState()
    stats = replay_spool(spool, Applier(backend.writer(), lambda _: None), state, {})
    assert stats.finished and stats.points == 2
    client = MlflowClient(sqlite_uri)
    got = client.get_run(state.remote_run_id)
    assert got.info.status == "FINISHED" and got.info.end_time == 2_000
    assert got.data.tags["offline"] == "" and got.data.tags[NOTE_TAG] == "kept on disk first"
    summary = json.loads(got.data.tags[SUMMARY_TAG])
    assert summary["best"] == 0.5 and summary["inf"] == math.inf and summary["words"] == ["a", "b"]
    values = [m.value for m in sorted(client.get_metric_history(got.info.run_id, "loss"), key=lambda m: m.step)]
    assert values[0] == 1.0 and math.isnan(values[1])


def test_a_platform_without_summary_drops_it_and_records_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                            store: MlflowClient) -> None:
    from trackbridge.backends.mlflow.backend import MlflowBackend

    monkeypatch.setattr(MlflowBackend, "features", MlflowBackend.features.disable("summary", "notes"))
    with tb.start_run(project="ops-mlflow", name="no-summary") as run:
        run.log_summary({"x": 1})
        run.set_notes("lost")
    tags = store.get_run(_remote(run)).data.tags
    assert SUMMARY_TAG not in tags and NOTE_TAG not in tags
    dropped = json.loads(tags["trackbridge.mapping"])["dropped"]
    assert set(dropped) == {"run:summary", "run:notes"}


def test_a_first_create_does_not_look_the_run_up_first(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Only a create that was tried before (its answer lost) looks for the run at the
    destination; a first one goes straight out (a cloud listing would be a slow call)."""
    from trackbridge.facade import ops

    looked: list[str] = []
    real_create = ops.Applier._create

    def counting_create(self, op, local_id, state):  # noqa: ANN001, ANN202
        finder = self.find_run
        if finder is not None:
            self.find_run = lambda experiment, local: looked.append(local) or finder(experiment, local)
        try:
            return real_create(self, op, local_id, state)
        finally:
            self.find_run = finder

    monkeypatch.setattr(ops.Applier, "_create", counting_create)
    with tb.start_run(project="first-create", name="a") as run:
        run.log_metrics({"x": 1.0}, step=0)
    assert _remote(run) and looked == []
