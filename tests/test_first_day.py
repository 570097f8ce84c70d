"""A new user's first day (issue 15): ordinary mistakes give one clear line and a
non-zero exit, secrets never show, the facade keeps its promise, the README's
quickstart runs as written."""
from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)

import trackbridge as tb
from trackbridge.cli import main
from trackbridge.redact import mask

SECRET = "s3cretPW"


def _cli(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def _clean_error(result: Result, *needles: str, code: int = 2) -> str:
    """Exit ``code``, no traceback, and an ``error:`` line holding every needle."""
    text = result.output
    assert result.exit_code == code, text
    assert "Traceback" not in text and not isinstance(result.exception, (AssertionError, TypeError, KeyError)), text
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert errors, text
    assert all(needle in errors[0] for needle in needles), errors[0]
    return errors[0]


# -- 1. a source that is not there ---------------------------------------------------------


@pytest.mark.parametrize("backend", ["dir", "wandb-offline", "comet-offline"])
@pytest.mark.parametrize("command", ["copy", "sync", "plan", "check"])
def test_missing_source_path_is_an_error_naming_path_and_expectation(isolated_env: Path, backend: str,
                                                                     command: str) -> None:
    result = _cli(command, f"{backend}:./nope", "dir:./out")
    _clean_error(result, str(isolated_env / "nope"), "does not exist", "expected there")
    assert not (isolated_env / "out").exists(), "nothing may be written for a failed command"


def test_missing_source_of_check_against_mlflow(isolated_env: Path) -> None:
    _clean_error(_cli("check", "dir:./nope", "mlflow:quickstart"), "nope", "does not exist")
    assert not (isolated_env / "mlflow.db").exists()


@pytest.mark.parametrize("backend", ["dir", "wandb-offline", "comet-offline"])
def test_empty_source_folder_is_an_error_unless_allowed(isolated_env: Path, backend: str) -> None:
    (isolated_env / "empty").mkdir()
    _clean_error(_cli("copy", f"{backend}:./empty", "dir:./out"), "no run", "--allow-empty")
    _clean_error(_cli("check", f"{backend}:./empty", "dir:./out"), "no run", "--allow-empty")
    assert _cli("copy", f"{backend}:./empty", "dir:./out", "--allow-empty").exit_code == 0
    assert _cli("check", f"{backend}:./empty", "dir:./out", "--allow-empty").exit_code == 0


def test_empty_default_mlflow_store_is_an_error_and_creates_nothing(isolated_env: Path) -> None:
    _clean_error(_cli("copy", "mlflow", "dir:./out"), "no run", "mlflow")
    assert not (isolated_env / "mlflow.db").exists() and not (isolated_env / "out").exists()


def test_ls_of_a_missing_path(isolated_env: Path) -> None:
    _clean_error(_cli("ls", "dir:./nope"), "does not exist")


# -- 2. .env mistakes ----------------------------------------------------------------------


@pytest.mark.parametrize("args", [["doctor"], ["doctor", "--json"], ["ls", "mlflow"], ["copy", "mlflow", "dir:x"],
                                  ["replay"]])
def test_binary_dotenv_is_one_clear_line(isolated_env: Path, args: list[str]) -> None:
    (isolated_env / ".env").write_bytes(bytes(range(256)) * 4)
    _clean_error(_cli(*args), str(isolated_env / ".env"), "not a text file")


def test_unclosed_quote_in_dotenv_names_file_line_and_key(isolated_env: Path) -> None:
    (isolated_env / ".env").write_text('TRACKBRIDGE_PROJECT=p\nTRACKBRIDGE_BACKEND="wandb\n')
    line = _clean_error(_cli("doctor"), f"{isolated_env / '.env'}:2", "TRACKBRIDGE_BACKEND", "unclosed quote")
    assert "wandb" not in line.replace("TRACKBRIDGE_BACKEND", ""), "a value (maybe a secret) is never echoed"


def test_multiline_quoted_value_in_dotenv_is_fine(isolated_env: Path) -> None:
    (isolated_env / ".env").write_text('KEY="line one\nline two"\nTRACKBRIDGE_PROJECT=p\n')
    assert _cli("doctor").exit_code == 0


def test_facade_keeps_a_run_locally_when_dotenv_cannot_be_read(isolated_env: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    """Never the default tracker nobody chose: the run goes to dir:$TRACKBRIDGE_HOME/unsent,
    loudly, and `trackbridge copy` sends it once .env is fixed."""
    (isolated_env / ".env").write_text('TRACKBRIDGE_BACKEND="wandb\n')
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        with tb.start_run(project="held", name="r") as run:
            run.log_metrics({"loss": 0.5}, step=0)
    warning = "\n".join(r.getMessage() for r in caplog.records)
    assert ".env:1" in warning and "NOT sent" in warning and "trackbridge copy dir:" in warning
    assert not (isolated_env / "mlflow.db").exists(), "the default store must not receive it"
    unsent = Path(os.environ["TRACKBRIDGE_HOME"]) / "unsent"
    (isolated_env / ".env").write_text("TRACKBRIDGE_BACKEND=mlflow\n")
    assert _cli("copy", f"dir:{unsent}", "mlflow").exit_code == 0
    result = _cli("ls", "mlflow:held", "--json")
    assert result.exit_code == 0 and '"name": "r"' in result.output


# -- 3. credentials never shown ------------------------------------------------------------


@pytest.mark.parametrize(("text", "shown"), [
    (f"http://alice:{SECRET}@host:5000/x", "http://alice:***@host:5000/x"),
    (f"https://{SECRET}@github.com/a", "https://***@github.com/a"),
    (f"https://h/api?token={SECRET}&x=1", "https://h/api?token=***&x=1"),
    (f"https://h/api?x=1&api_key={SECRET}", "https://h/api?x=1&api_key=***"),
    (f"azureml://h/p?sig={SECRET}&se=2", "azureml://h/p?sig=***&se=2"),
    ("sqlite:///./mlflow.db", "sqlite:///./mlflow.db"),
])
def test_mask(text: str, shown: str) -> None:
    assert mask(text) == shown


def test_doctor_masks_urls_from_env_dotenv_and_toml(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:1/")
    (isolated_env / ".env").write_text(f"WANDB_BASE_URL=https://bob:{SECRET}x@wandb.example.com\n")
    (isolated_env / "trackbridge.toml").write_text(
        f'[remotes.prod]\nbackend = "mlflow"\ntracking_uri = "https://carol:{SECRET}y@mlflow.example.com?token={SECRET}z"\n')
    for args in (["doctor"], ["doctor", "--json"]):
        result = _cli(*args)
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
        assert "alice:***@" in result.output and "carol:***@" in result.output
