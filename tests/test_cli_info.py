"""`trackbridge doctor` and `ls`: origins shown, secrets never printed."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from trackbridge.cli import main


def test_doctor_shows_origins_and_masks_secrets(isolated_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (isolated_env / ".env").write_text("TRACKBRIDGE_PROJECT=from-dotenv\nMLFLOW_TRACKING_PASSWORD=hunter2-secret\n")
    (isolated_env / "trackbridge.toml").write_text('on_error = "raise"\n')
    monkeypatch.setenv("WANDB_API_KEY", "wandb-secret-value")
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["settings"]["project"] == {"value": "from-dotenv", "origin": ".env TRACKBRIDGE_PROJECT"}
    assert report["settings"]["on_error"] == {"value": "raise", "origin": "trackbridge.toml"}
    assert report["settings"]["backend"]["origin"] == "default"
    assert report["credentials"]["WANDB_API_KEY"] == "set"
    assert report["backends"]["mlflow"]["sdk_version"]
    for args in (["doctor"], ["doctor", "--json"]):
        out = CliRunner().invoke(main, args).output
        assert "hunter2-secret" not in out and "wandb-secret-value" not in out


def test_doctor_reports_malformed_dotenv(isolated_env: Path) -> None:
    (isolated_env / ".env").write_text("GOOD=1\nthis line is broken\n")
    result = CliRunner().invoke(main, ["doctor"])
    assert result.exit_code == 2
    assert ".env:2: malformed line" in result.output


def test_help_lists_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    for command in ("doctor", "ls"):
        assert command in result.output


def test_env_example_lists_every_variable_a_backend_reads() -> None:
    """.env.example is fed by the same info tables as doctor: none may be missing."""
    from pathlib import Path

    from trackbridge.cli.info import env_vars

    text = (Path(__file__).parents[1] / ".env.example").read_text(encoding="utf-8")
    missing = [var for var in env_vars() if f"{var}=" not in text]
    assert env_vars() and not missing, f".env.example lacks {missing}"


def test_doctor_shows_what_each_backend_says_of_itself_without_secrets(isolated_env: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """Backend.diagnose lines: a remote of the config file with its options, explained in one line."""
    (isolated_env / "trackbridge.toml").write_text(
        '[remotes.az]\nbackend = "azureml"\nsubscription_id = "sub-1"\nresource_group = "rg"\n'
        'workspace = "ws"\nendpoint = "https://westeurope.api.azureml.ms"\ntoken_env = "AZ_TOKEN"\n')
    monkeypatch.setenv("AZ_TOKEN", "bearer-secret-value")
    result = CliRunner().invoke(main, ["doctor", "--json"])
    assert result.exit_code == 0, result.output
    checks = json.loads(result.output)["checks"]
    lines = " ".join(checks["remote az"])
    assert "sub-1/rg/ws" in lines and "tracking URI" in lines and "bearer-secret-value" not in lines
    assert any("workspace" in line for line in checks["azureml"])  # the bare backend: what is missing
