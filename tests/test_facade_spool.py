"""The spool on its own: durable appends, torn last lines, atomic state, no secrets on disk."""
from __future__ import annotations

from pathlib import Path

import pytest
from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from servers import free_port

import trackbridge as tb
from trackbridge.facade.ops import RunState, compact
from trackbridge.facade.spool import Spool, safe_options


def test_append_and_read_resume_from_an_offset(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run1")
    spool.append([{"op": "params", "params": {"a": "1"}}, {"op": "metrics", "points": [("m", 0, 1.5, 10)]}])
    read = list(spool.read_from(0))
    assert [op for op, _ in read] == [{"op": "params", "params": {"a": "1"}},
                                      {"op": "metrics", "points": [["m", 0, 1.5, 10]]}]
    after_first = read[0][1]
    assert [op["op"] for op, _ in spool.read_from(after_first)] == ["metrics"]
    assert list(spool.read_from(read[-1][1])) == []


def test_a_torn_last_line_is_left_for_later(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run1")
    spool.append([{"op": "tags", "tags": {"k": "v"}}])
    with spool.log_path.open("a") as fh:
        fh.write('{"op": "fin')  # a crash in the middle of an append
    assert [op["op"] for op, _ in spool.read_from(0)] == ["tags"]


def test_state_round_trips_and_replaces_atomically(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run1")
    state = RunState(remote_run_id="abc", create_attempted=True, models={"m": {"artifact_path": "m", "model_id": "x"}},
                     versions={"op1": "3"}, offset=42)
    spool.save(state, {"remote": "mlflow"})
    loaded, meta = spool.load()
    assert loaded == state and meta == {"remote": "mlflow"}
    assert not list(tmp_path.glob("*.tmp"))


def test_nan_survives_the_spool(tmp_path: Path) -> None:
    spool = Spool(tmp_path, "run1")
    spool.append(compact([("m", 0, float("nan"), 1), ("m", 1, float("inf"), 2)], 1000))
    (op, _), = spool.read_from(0)
    value0, value1 = op["points"][0][2], op["points"][1][2]
    assert value0 != value0 and value1 == float("inf")


def test_compact_orders_create_first_finish_last_and_coalesces() -> None:
    items = [
        {"op": "create", "experiment": "e"},
        ("m", 0, 1.0, 1),
        {"op": "params", "params": {"a": "1"}},
        {"op": "artifact", "file": "0/x", "artifact_dir": None},
        {"op": "params", "params": {"b": "2"}},
        ("m", 1, 2.0, 2),
        ("m", 2, 3.0, 3),
        {"op": "tags", "tags": {"t": "1"}},
        {"op": "tags", "tags": {"t": "2"}},
        {"op": "finish", "status": "FINISHED"},
    ]
    ops = compact(items, batch_size=2)
    assert [op["op"] for op in ops] == ["create", "params", "tags", "metrics", "metrics", "artifact", "finish"]
    assert ops[1]["params"] == {"a": "1", "b": "2"} and ops[2]["tags"] == {"t": "2"}
    assert [len(op["points"]) for op in ops if op["op"] == "metrics"] == [2, 1]


def test_safe_options_drop_secrets() -> None:
    options = {"tracking_uri": "http://h:1", "token": "t", "api_key": "k", "password": "p",
               "proxy": "http://user:pw@proxy:3128", "http_retries": 0}
    assert safe_options(options) == {"tracking_uri": "http://h:1", "http_retries": 0}


def test_no_secret_reaches_the_spool(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "MLFLOW_HTTP_REQUEST_TIMEOUT", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR"):
        monkeypatch.delenv(var, raising=False)
    secret = "s3cr3t-token-value"
    (isolated_env / "trackbridge.toml").write_text(
        f'[remotes.prod]\nbackend = "mlflow"\ntracking_uri = "http://127.0.0.1:{free_port()}"\n'
        'token_env = "PROD_TOKEN"\nhttp_retries = 0\n'
    )
    monkeypatch.setenv("PROD_TOKEN", secret)
    with tb.start_run(project="secrets", backend="prod", config={"lr": 1}) as run:
        run.log_metrics({"x": 1.0})
    files = [p for p in (isolated_env / ".trackbridge" / "spool" / "prod").rglob("*") if p.is_file()]
    assert any(p.name == f"{run.id}.jsonl" for p in files)
    for path in files:
        assert secret not in path.read_text(errors="replace"), f"secret written to {path}"
