"""Configuration precedence and bad-config errors (trackbridge.config, remotes, registry).

Precedence, highest first: argument > env > .env > trackbridge.toml >
[tool.trackbridge] in pyproject.toml > default.  Each level is proven by
setting it *and every level below it* to different values.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from trackbridge.backends import backend_class
from trackbridge.config import load_config
from trackbridge.errors import ConfigError, UnknownBackendError
from trackbridge.remotes import parse_remote


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    """``.env`` loading writes into ``os.environ``; undo it so no test leaks into the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


def _write_all_levels(cwd: Path) -> None:
    (cwd / "pyproject.toml").write_text('[tool.trackbridge]\nbackend = "from-pyproject"\n')
    (cwd / "trackbridge.toml").write_text('backend = "from-toml"\n')
    (cwd / ".env").write_text("TRACKBRIDGE_BACKEND=from-dotenv\n")


def test_default_when_nothing_is_set(isolated_env: Path) -> None:
    config = load_config()
    assert config.get("backend") == "mlflow"
    assert config.origin("backend") == "default"


def test_pyproject_beats_default(isolated_env: Path) -> None:
    (isolated_env / "pyproject.toml").write_text('[tool.trackbridge]\nbackend = "from-pyproject"\n')
    config = load_config()
    assert config.get("backend") == "from-pyproject"
    assert config.origin("backend") == "pyproject.toml [tool.trackbridge]"


def test_pyproject_without_table_is_ignored(isolated_env: Path) -> None:
    (isolated_env / "pyproject.toml").write_text('[project]\nname = "x"\n')
    assert load_config().origin("backend") == "default"


def test_trackbridge_toml_beats_pyproject(isolated_env: Path) -> None:
    (isolated_env / "pyproject.toml").write_text('[tool.trackbridge]\nbackend = "from-pyproject"\n')
    (isolated_env / "trackbridge.toml").write_text('backend = "from-toml"\n')
    config = load_config()
    assert config.get("backend") == "from-toml"
    assert config.origin("backend") == "trackbridge.toml"


def test_dotenv_beats_config_files(isolated_env: Path) -> None:
    _write_all_levels(isolated_env)
    config = load_config()
    assert config.get("backend") == "from-dotenv"
    assert config.origin("backend") == ".env TRACKBRIDGE_BACKEND"
    assert config.dotenv_keys == ["TRACKBRIDGE_BACKEND"]


def test_env_beats_dotenv_and_dotenv_does_not_override(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_all_levels(isolated_env)
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "from-env")
    config = load_config()
    assert config.get("backend") == "from-env"
    assert config.origin("backend") == "env TRACKBRIDGE_BACKEND"
    assert os.environ["TRACKBRIDGE_BACKEND"] == "from-env"


def test_dotenv_overrides_env_only_when_asked(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_all_levels(isolated_env)
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "from-env")
    monkeypatch.setenv("TRACKBRIDGE_DOTENV_OVERRIDE", "true")
    config = load_config()
    assert config.get("backend") == "from-dotenv"
    assert config.origin("backend") == ".env TRACKBRIDGE_BACKEND"


def test_argument_beats_everything(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_all_levels(isolated_env)
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "from-env")
    config = load_config({"backend": "from-argument"})
    assert config.get("backend") == "from-argument"
    assert config.origin("backend") == "argument"


def test_none_argument_falls_through(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "from-env")
    assert load_config({"backend": None}).get("backend") == "from-env"


def test_comma_list_is_fan_out(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "mlflow, dir ,")
    assert load_config().backends == ["mlflow", "dir"]


def test_empty_backend_is_a_config_error(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", " , ")
    with pytest.raises(ConfigError, match="TRACKBRIDGE_BACKEND"):
        load_config().backends


def test_malformed_dotenv_names_the_line(isolated_env: Path) -> None:
    (isolated_env / ".env").write_text("# comment\nTRACKBRIDGE_BACKEND=mlflow\nthis is not an assignment\n")
    with pytest.raises(ConfigError) as info:
        load_config()
    assert ".env:3" in str(info.value)
    assert "KEY=value" in str(info.value)


def test_invalid_toml_is_a_config_error(isolated_env: Path) -> None:
    (isolated_env / "trackbridge.toml").write_text("backend = \n")
    with pytest.raises(ConfigError, match="trackbridge.toml: invalid TOML"):
        load_config()


def test_unknown_setting_in_file_is_reported(isolated_env: Path) -> None:
    (isolated_env / "trackbridge.toml").write_text('backnd = "mlflow"\n')
    with pytest.raises(ConfigError, match="backnd"):
        load_config()


def test_unknown_backend_lists_known_names(isolated_env: Path) -> None:
    with pytest.raises(UnknownBackendError) as info:
        backend_class("mlfow")
    message = str(info.value)
    assert "'mlfow'" in message
    assert "mlflow" in message.replace("'mlfow'", "") and "dir" in message


def test_named_remote_from_config_file(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_env / "trackbridge.toml").write_text(
        '[remotes.prod]\nbackend = "mlflow"\ntracking_uri = "http://127.0.0.1:5999"\ntoken_env = "PROD_TOKEN"\n'
    )
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "prod")
    monkeypatch.setenv("PROD_TOKEN", "s3cret")
    config = load_config()
    assert config.backends == ["prod"]
    spec = parse_remote(config.backends[0], config)
    assert spec.backend == "mlflow"
    assert spec.options == {"tracking_uri": "http://127.0.0.1:5999", "token": "s3cret"}


def test_named_remote_secret_missing_is_clear(isolated_env: Path) -> None:
    (isolated_env / "trackbridge.toml").write_text('[remotes.prod]\nbackend = "mlflow"\ntoken_env = "PROD_TOKEN"\n')
    with pytest.raises(ConfigError, match="PROD_TOKEN") as info:
        parse_remote("prod", load_config())
    assert "not set" in str(info.value)


def test_remote_without_backend_line_is_an_error(isolated_env: Path) -> None:
    (isolated_env / "trackbridge.toml").write_text('[remotes.prod]\ntracking_uri = "x"\n')
    with pytest.raises(ConfigError, match=r"\[remotes.prod\] needs a 'backend"):
        load_config()


def test_unknown_remote_lists_known(isolated_env: Path) -> None:
    (isolated_env / "trackbridge.toml").write_text('[remotes.prod]\nbackend = "mlflow"\n')
    with pytest.raises(ConfigError) as info:
        parse_remote("staging", load_config())
    assert "prod" in str(info.value) and "mlflow" in str(info.value)


def test_max_queued_reaches_the_worker_and_is_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    import trackbridge as tb

    monkeypatch.setenv("TRACKBRIDGE_MAX_QUEUED", "1234")
    run = tb.start_run(project="q", name="bounded")
    try:
        assert {w.max_queued for w in run._workers} == {1234}
    finally:
        run.finish()
    monkeypatch.setenv("TRACKBRIDGE_MAX_QUEUED", "lots")
    with pytest.raises(ConfigError, match="max_queued = 'lots' \\(env TRACKBRIDGE_MAX_QUEUED\\) must be a positive whole number"):
        tb.start_run(project="q", name="bad")
