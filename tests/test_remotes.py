"""Remote arguments resolve to the right backend, options and experiment."""
from __future__ import annotations

from pathlib import Path

import pytest

from trackbridge.backends import backend_class, get_backend
from trackbridge.config import load_config
from trackbridge.errors import ConfigError, UnknownBackendError
from trackbridge.remotes import parse_remote


def test_bare_backend_name_with_experiment() -> None:
    spec = parse_remote("mlflow:my exp: with colon", load_config())
    assert (spec.backend, spec.experiment, spec.options) == ("mlflow", "my exp: with colon", {})


def test_dir_archive() -> None:
    spec = parse_remote("dir:./backup", load_config())
    assert spec.backend == "dir" and spec.options == {"path": "./backup"} and spec.experiment is None


def test_named_remote_from_file_with_secret_by_reference(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_env / "trackbridge.toml").write_text(
        '[remotes.prod]\nbackend = "mlflow"\ntracking_uri = "http://127.0.0.1:1"\ntoken_env = "PROD_TOKEN"\n'
    )
    with pytest.raises(ConfigError, match="PROD_TOKEN.*not set"):
        parse_remote("prod:churn", load_config())
    monkeypatch.setenv("PROD_TOKEN", "s3cret")
    spec = parse_remote("prod:churn", load_config())
    assert spec.options == {"tracking_uri": "http://127.0.0.1:1", "token": "s3cret"}
    assert spec.experiment == "churn"


def test_named_remote_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_SRC_BACKEND", "mlflow")
    monkeypatch.setenv("TRACKBRIDGE_REMOTE_SRC_TRACKING_URI", "sqlite:///x.db")
    spec = parse_remote("src", load_config())
    assert spec.backend == "mlflow" and spec.options == {"tracking_uri": "sqlite:///x.db"}


def test_unknown_remote_and_backend_are_clear_errors() -> None:
    with pytest.raises(ConfigError, match="unknown remote 'nope'.*Known:.*mlflow"):
        parse_remote("nope:x", load_config())
    with pytest.raises(UnknownBackendError, match="unknown backend 'neptune'.*Known backends"):
        get_backend("neptune")


def test_registry_loads_builtin_lazily() -> None:
    assert backend_class("mlflow").name == "mlflow"
