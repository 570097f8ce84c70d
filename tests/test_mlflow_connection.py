"""MLflow backend plumbing: defaults, masking, credentials per remote, fail-fast errors."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from servers import MlflowServer, free_port
from trackbridge.backends.mlflow import MlflowBackend
from trackbridge.backends.mlflow.errors import is_transient, is_unsupported, mask_secrets, translate
from trackbridge.errors import BackendError, ConfigError, RunNotFound, TransientBackendError
from trackbridge.model import MetricPoint, RunStatus


def test_default_uri_is_embedded_sqlite_in_cwd(isolated_env: Path) -> None:
    backend = MlflowBackend()
    assert backend.tracking_uri == f"sqlite:///{isolated_env / 'mlflow.db'}"
    exp_id = backend.writer().ensure_experiment("default-store")
    assert (isolated_env / "mlflow.db").is_file()
    assert backend.reader().get_experiment("default-store").id == exp_id  # type: ignore[union-attr]


def test_env_uri_used_and_option_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://127.0.0.1:5999")
    assert MlflowBackend().tracking_uri == "http://127.0.0.1:5999"
    assert MlflowBackend({"tracking_uri": "sqlite:///o.db"}).tracking_uri == "sqlite:///o.db"


def test_describe_masks_password() -> None:
    backend = MlflowBackend({"tracking_uri": "https://bob:hunter2@mlflow.example.com/prefix"})
    assert "hunter2" not in backend.describe() and "bob:***@" in backend.describe()  # the user tells accounts apart
    assert "mlflow.example.com/prefix" in backend.describe()
    assert mask_secrets("failed: http://u:p@h:1/x and https://tok@h2/") == "failed: http://u:***@h:1/x and https://***@h2/"


def test_env_vars_and_sdk_version() -> None:
    import mlflow

    assert MlflowBackend.sdk_version() == mlflow.__version__
    assert MlflowBackend.info.env_vars["MLFLOW_TRACKING_PASSWORD"] is True
    assert MlflowBackend.info.env_vars["MLFLOW_TRACKING_TOKEN"] is True
    assert MlflowBackend.info.env_vars["MLFLOW_TRACKING_URI"] is False


def test_importing_the_backend_does_not_import_mlflow() -> None:
    code = (
        "import sys, trackbridge.backends.mlflow as m;"
        "m.MlflowBackend({'tracking_uri': 'sqlite:///x.db'}).describe();"
        "m.MlflowBackend.sdk_version();"
        "assert 'mlflow' not in sys.modules, 'mlflow imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_username_without_password_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="together"):
        MlflowBackend({"tracking_uri": "http://127.0.0.1:1", "username": "u"})


def test_credentials_stay_with_their_remote() -> None:
    """Options' credentials reach this remote's requests, never os.environ or another URI."""
    with_token = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}", "token": "s3cret"})
    with_basic = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}", "username": "u", "password": "pw"})
    plain = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}"})

    def creds(backend: MlflowBackend, registry: bool = False):  # noqa: ANN202
        client = backend.connection.client
        store = client._get_registry_client().store if registry else client._tracking_client.store
        return store.get_host_creds()

    assert creds(with_token).token == "s3cret" and creds(with_token, registry=True).token == "s3cret"
    assert (creds(with_basic).username, creds(with_basic).password) == ("u", "pw")
    assert creds(plain).token is None and creds(plain).username is None
    assert "s3cret" not in os.environ.values() and "pw" not in os.environ.values()


def test_closed_port_fails_fast_as_transient() -> None:
    backend = MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}"})
    started = time.monotonic()
    with pytest.raises(TransientBackendError) as info:
        backend.writer().ensure_experiment("anything")
    elapsed = time.monotonic() - started
    assert elapsed < 20, f"took {elapsed:.1f}s: MLflow's own retries were not shortened"
    assert "retried" in str(info.value)
    with pytest.raises(TransientBackendError):
        list(backend.reader().list_runs("anything"))


def test_retry_env_defaults_respect_user_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "5")
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_TIMEOUT", raising=False)
    MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}"}).connection.client  # noqa: B018
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "5"
    assert os.environ["MLFLOW_HTTP_REQUEST_TIMEOUT"] == "30"
    MlflowBackend({"tracking_uri": f"http://127.0.0.1:{free_port()}", "http_retries": 0}).connection.client  # noqa: B018
    assert os.environ["MLFLOW_HTTP_REQUEST_MAX_RETRIES"] == "0"


def test_translation_of_rest_error_codes() -> None:
    from mlflow.exceptions import MlflowException, RestException

    unavailable = RestException({"error_code": "TEMPORARILY_UNAVAILABLE", "message": "busy"})
    limited = RestException({"error_code": "REQUEST_LIMIT_EXCEEDED", "message": "slow down"})
    missing = RestException({"error_code": "RESOURCE_DOES_NOT_EXIST", "message": "no run"})
    invalid = RestException({"error_code": "INVALID_PARAMETER_VALUE", "message": "bad key"})
    assert isinstance(translate(unavailable, "x"), TransientBackendError)
    assert isinstance(translate(limited, "x"), TransientBackendError)
    assert isinstance(translate(missing, "read", run_id="r1"), RunNotFound)
    assert type(translate(missing, "read an experiment")) is BackendError
    assert type(translate(invalid, "x")) is BackendError
    # a local failure carries MLflow's default INTERNAL_ERROR code: not retryable
    assert not is_transient(MlflowException("local bug"))
    assert not is_transient(RestException({"error_code": "INVALID_STATE", "message": "run not active"}))
    assert is_transient(RestException({"error_code": "INTERNAL_ERROR", "message": "server bug"}))
    gateway = MlflowException("API request to endpoint /x failed with error code 502 != 200. Response body: '<html>'")
    assert isinstance(translate(gateway, "x"), TransientBackendError)
    assert is_unsupported(RestException({"error_code": "ENDPOINT_NOT_FOUND", "message": "no such API"}))
    leaked = MlflowException("API request to http://u:pw@h/api failed with exception boom")
    error = translate(leaked, "x")
    assert isinstance(error, TransientBackendError) and "pw" not in str(error)


def test_writer_is_usable_from_several_threads(sqlite_uri: str) -> None:
    Path(sqlite_uri.removeprefix("sqlite:///")).parent.mkdir(parents=True)
    backend = MlflowBackend({"tracking_uri": sqlite_uri})
    writer = backend.writer()
    exp_id = writer.ensure_experiment("threads")
    run_ids = [writer.create_run(exp_id, name=f"t{i}") for i in range(4)]
    errors: list[BaseException] = []

    def work(run_id: str) -> None:
        try:
            for chunk in range(5):
                writer.log_metrics(run_id, [("m", MetricPoint(chunk * 100 + i, float(i), i)) for i in range(100)])
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(r,)) for r in run_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    reader = backend.reader()
    assert all(sum(len(p) for p in reader.iter_metric_history(r, "m")) == 500 for r in run_ids)


def test_no_run_links_printed_to_stdout(
    mlflow_server: MlflowServer, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """MLflow prints "View run ..." for http URIs when a run ends: that would corrupt --json output."""
    monkeypatch.delenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", raising=False)
    writer = MlflowBackend({"tracking_uri": mlflow_server.url}).writer()
    run_id = writer.create_run(writer.ensure_experiment("quiet-stdout"))
    writer.finish_run(run_id, RunStatus.FINISHED)
    assert capfd.readouterr().out == ""
    monkeypatch.setenv("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "false")  # the user's choice wins
    writer = MlflowBackend({"tracking_uri": mlflow_server.url}).writer()
    writer.finish_run(writer.create_run(writer.ensure_experiment("quiet-stdout")), RunStatus.FINISHED)
    assert "View run" in capfd.readouterr().out
