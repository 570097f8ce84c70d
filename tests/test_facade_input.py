"""Bad input through the facade: raised synchronously where it is the caller's bug,
sanitised and recorded where the backend merely cannot hold it."""
from __future__ import annotations

import json
import math
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from mlflow import MlflowClient

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.backends.base import Limits
from trackbridge.errors import ConfigError, InvalidKeyError, InvalidValueError, UnknownBackendError
from trackbridge.facade.channel import Channel
from trackbridge.facade.sanitise import Sanitiser
from trackbridge.facade.spool import Spool
from trackbridge.mapping import MAPPING_TAG


@pytest.fixture(scope="module")
def shared_uri(tmp_path_factory: pytest.TempPathFactory) -> str:
    uri = f"sqlite:///{tmp_path_factory.mktemp('input-store') / 'mlflow.db'}"
    MlflowClient(uri).search_experiments()
    return uri


@pytest.fixture
def store(shared_uri: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[MlflowClient]:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", shared_uri)
    yield MlflowClient(shared_uri)
    if tb.active_run() is not None:  # a test that raised mid-run must not leak its run
        tb.active_run().finish()


def _mapping(client: MlflowClient, run: tb.Run) -> dict:
    return json.loads(client.get_run(run.remote_ids["mlflow"]).data.tags[MAPPING_TAG])


def test_unknown_backend_is_raised_at_start_with_known_names(store: MlflowClient) -> None:
    with pytest.raises(UnknownBackendError) as info:
        tb.start_run(project="x", backend="mlfow")
    assert "mlflow" in str(info.value).replace("'mlfow'", "") and "dir" in str(info.value)
    assert tb.active_run() is None


def test_unknown_backend_from_env_is_raised_too(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "nope")
    with pytest.raises(ConfigError, match="nope"):
        tb.start_run(project="x")


def test_malformed_dotenv_is_raised_at_start_under_raise(store: MlflowClient, isolated_env: Path) -> None:
    """The default keeps the run locally instead (test_first_day.py); asked to raise, it raises."""
    (isolated_env / ".env").write_text("TRACKBRIDGE_PROJECT=p\nnot an assignment\n")
    with pytest.raises(ConfigError, match=r"\.env:2"):
        tb.start_run(on_error="raise")


def test_bad_on_error_value_names_its_origin(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_ON_ERROR", "ignore")
    with pytest.raises(ConfigError, match="TRACKBRIDGE_ON_ERROR"):
        tb.start_run(project="x")


def test_invalid_keys_are_sanitised_and_recorded(store: MlflowClient) -> None:
    with tb.start_run(project="keys", config={"lr@start": 0.1}) as run:
        run.log_metrics({"loss@val": 0.5}, step=1)
        run.log_metrics({"loss@val": 0.25}, step=2)
    got = store.get_run(run.remote_ids["mlflow"])
    assert got.data.params == {"lr_start": "0.1"}
    history = store.get_metric_history(got.info.run_id, "loss_val")
    assert sorted((m.step, m.value) for m in history) == [(1, 0.5), (2, 0.25)]
    assert _mapping(store, run)["renamed"] == {"metric:loss_val": "loss@val", "param:lr_start": "lr@start"}


def test_keys_colliding_after_sanitising_raise_and_log_nothing(store: MlflowClient) -> None:
    with tb.start_run(project="collide", on_error="raise") as run:
        with pytest.raises(InvalidKeyError, match="both become 'a_b'"):
            run.log_metrics({"a@b": 1.0, "a#b": 2.0})
        with pytest.raises(InvalidKeyError):
            run.log_params({"p@q": 1, "p#q": 2})
        run.log_metrics({"ok": 1.0})
    got = store.get_run(run.remote_ids["mlflow"])
    assert set(got.data.metrics) == {"ok"}
    assert got.data.params == {}


def test_non_string_metric_key_is_an_error(store: MlflowClient) -> None:
    with tb.start_run(project="badkey", on_error="raise") as run:
        with pytest.raises(InvalidKeyError, match="must be a string"):
            run.log_metrics({3: 1.0})


def test_unserialisable_values_raise(store: MlflowClient) -> None:
    with tb.start_run(project="values", on_error="raise") as run:
        with pytest.raises(InvalidValueError, match="param 'obj'"):
            run.log_params({"obj": object()})
        with pytest.raises(InvalidValueError, match="metric 'm'"):
            run.log_metrics({"m": "high"})
        with pytest.raises(InvalidValueError, match="step"):
            run.log_metrics({"m": 1.0}, step=1.5)
    with pytest.raises(InvalidValueError, match="param 'opt.fn'"):
        tb.start_run(project="values", config={"opt": {"fn": print}})


def test_long_param_truncated_with_full_value_as_artifact(store: MlflowClient, tmp_path: Path) -> None:
    from mlflow.utils.validation import MAX_PARAM_VAL_LENGTH

    big = "x" * 50_000 + "y" * 50_000
    with tb.start_run(project="long", config={"prompt": {"text": big}}) as run:
        pass
    got = store.get_run(run.remote_ids["mlflow"])
    assert got.data.params["prompt.text"] == big[:MAX_PARAM_VAL_LENGTH]
    assert _mapping(store, run)["truncated"] == {"param:prompt.text": 100_000}
    path = store.download_artifacts(got.info.run_id, "trackbridge/params/prompt.text.txt", str(tmp_path))
    assert Path(path).read_text() == big


def test_long_param_under_raise_policy(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_LONG_PARAMS", "raise")
    with tb.start_run(project="long-raise") as run:
        with pytest.raises(InvalidValueError, match="100000 characters"):
            run.log_params({"prompt": "z" * 100_000})
        run.log_params({"short": "ok"})
    assert store.get_run(run.remote_ids["mlflow"]).data.params == {"short": "ok"}


def test_nan_and_inf_are_kept_where_the_backend_allows(store: MlflowClient) -> None:
    values = [math.nan, math.inf, -math.inf, 1.5]
    with tb.start_run(project="nan") as run:
        for step, value in enumerate(values):
            run.log_metrics({"v": value}, step=step)
    history = sorted(store.get_metric_history(run.remote_ids["mlflow"], "v"), key=lambda m: m.step)
    assert [m.step for m in history] == [0, 1, 2, 3]  # nothing dropped on the way
    assert math.isnan(history[0].value)
    # MLflow's SQL store itself clamps ±inf to ±float max (its own behaviour, not ours)
    assert [m.value for m in history[1:]] == [sys.float_info.max, -sys.float_info.max, 1.5]


def test_nan_dropped_and_recorded_where_the_backend_refuses(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sanitiser = Sanitiser(Limits(allows_nan=False))
    channel = Channel("local", "strict", sanitiser, Spool(tmp_path, "local"), threading.Event(),
                      lambda *_: None, {})
    channel.add_metrics({"a": math.nan, "b": 2.0}, 0, 1)
    channel.add_metrics({"a": math.inf, "b": 3.0}, 1, 2)
    items = channel.take()
    points = [item for item in items if type(item) is tuple]
    assert points == [("b", 0, 2.0, 1), ("b", 1, 3.0, 2)]
    tags = [item["tags"] for item in items if type(item) is dict and item["op"] == "tags"]
    assert "metric:a" in json.loads(tags[-1][MAPPING_TAG])["dropped"]
    assert caplog.text.count("cannot store NaN/inf") == 1


def test_an_op_the_backend_refuses_is_kept_and_the_run_goes_on(
    store: MlflowClient, isolated_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tb.start_run(project="refused") as run:
        run.log_params({"lr": 0.1})
        assert run.flush()
        run.log_params({"lr": 0.2})  # MLflow params are immutable: the server refuses this one
        assert run.flush()
        run.log_metrics({"after": 1.0})
    got = store.get_run(run.remote_ids["mlflow"])
    assert got.data.params == {"lr": "0.1"}
    assert got.data.metrics == {"after": 1.0} and got.info.status == "FINISHED"
    rejected = isolated_env / ".trackbridge" / "spool" / "mlflow" / f"{run.id}.rejected.jsonl"
    entry = json.loads(rejected.read_text().splitlines()[0])
    assert entry["op"] == {"op": "params", "params": {"lr": "0.2"}}
    assert "refused" in caplog.text and str(rejected) in caplog.text


def test_bad_flush_interval_is_a_config_error(store: MlflowClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_FLUSH_INTERVAL", "soon")
    with pytest.raises(ConfigError, match="flush_interval = 'soon'.*positive number"):
        tb.start_run(project="x")
