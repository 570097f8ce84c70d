"""A new user's first day (issue 15): ordinary mistakes give one clear line and a
non-zero exit, secrets never show, the facade keeps its promise, the README's
quickstart runs as written."""
from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from facade_helpers import stop_facade_workers  # noqa: F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: F401  (fixture)

import trackbridge as tb
from trackbridge.backends import get_backend
from trackbridge.cli import main
from trackbridge.errors import InvalidValueError
from trackbridge.mapping import MAPPING_TAG
from trackbridge.redact import mask

SECRET = "s3cretPW"


@pytest.fixture(autouse=True)
def restore_environ() -> Iterator[None]:
    """A command reading a test's .env sets os.environ itself (as it does for users):
    undone here, so no test hands its variables to the next."""
    saved = dict(os.environ)
    yield
    os.environ.clear()
    os.environ.update(saved)


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


def test_empty_source_into_an_mlflow_store_creates_no_store(isolated_env: Path) -> None:
    """The copy of an empty source opens no writer: MLflow creates a store when one opens."""
    (isolated_env / "empty").mkdir()
    _clean_error(_cli("copy", "dir:./empty", "mlflow"), "no run", "--allow-empty")
    assert not (isolated_env / "mlflow.db").exists()


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


# -- 5. the facade's promise and the README's quickstart -----------------------------------


def _mlflow_run(run: tb.Run):  # noqa: ANN202 - an mlflow Run
    from mlflow import MlflowClient

    return MlflowClient().get_run(run.remote_ids["mlflow"])


@pytest.mark.parametrize("bad", [None, "high", b"x", object(), [1.0]])
def test_a_bad_metric_value_is_refused_once_and_training_goes_on(isolated_env: Path, bad: object,
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        with tb.start_run(project="promise") as run:
            for step in range(3):
                run.log_metrics({"loss": bad, "acc": 0.5 + step}, step=step)
            run.log({"loss": bad})
    assert run.rejected == {"metric:loss": 4}
    assert sum("metric 'loss'" in r.getMessage() for r in caplog.records) == 1, "reported once"
    got = _mlflow_run(run)
    assert got.info.status == "FINISHED" and got.data.metrics == {"acc": 2.5}
    assert "metric:loss" in json.loads(got.data.tags[MAPPING_TAG])["dropped"]


def test_bool_and_decimal_metrics_are_numbers(isolated_env: Path) -> None:
    with tb.start_run(project="promise") as run:
        run.log_metrics({"flag": True, "d": Decimal("0.25"), "f": Fraction(1, 4)}, step=0)
    assert run.rejected == {}
    assert _mlflow_run(run).data.metrics == {"flag": 1.0, "d": 0.25, "f": 0.25}


@pytest.mark.parametrize("call", [
    lambda r: r.log_params({"ok": 1, "bad": object()}),
    lambda r: r.log_summary({"ok": 1, "bad": {1, 2}}),
    lambda r: r.add_labels(["ok", 3]),
    lambda r: r.log_artifact("confusion_matrix.png"),
    lambda r: r.log_model("no_such_dir"),
    lambda r: r.register_model("m"),
    lambda r: r.log_metrics({"x": 1.0}, step=1.5),
    lambda r: r.log([1.0]),
    lambda r: r.set_notes(3),
])
def test_no_bad_input_raises_into_the_loop_under_the_default(isolated_env: Path, call) -> None:  # noqa: ANN001
    with tb.start_run(project="promise") as run:
        call(run)
        run.log_metrics({"after": 1.0}, step=0)
    assert sum(run.rejected.values()) == 1, run.rejected
    got = _mlflow_run(run)
    assert got.info.status == "FINISHED" and got.data.metrics == {"after": 1.0}
    assert "bad" not in got.data.params and got.data.params.get("ok", "1") == "1"


def test_on_error_raise_raises_bad_input(isolated_env: Path) -> None:
    with tb.start_run(project="promise", on_error="raise") as run:
        with pytest.raises(InvalidValueError, match="metric 'loss'"):
            run.log_metrics({"loss": None})
        with pytest.raises(FileNotFoundError, match="confusion_matrix.png"):
            run.log_artifact("confusion_matrix.png")
    assert run.rejected == {}


def test_readme_quickstart_runs_as_written(isolated_env: Path) -> None:
    """The README's Quickstart block, copied literally into a fresh folder, logs a whole
    run to the embedded MLflow store: points, artifact, model, registered version."""
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    code = re.search(r"## Quickstart\n\n```python\n(.*?)```", readme, re.S)
    assert code, "README has no Quickstart python block"
    (isolated_env / "quickstart.py").write_text(code.group(1))
    done = subprocess.run([sys.executable, "quickstart.py"], cwd=isolated_env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr and "not logged" not in done.stderr, done.stderr
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert run.info.status == "FINISHED" and len(client.get_metric_history(run.info.run_id, "loss")) == 100
    assert "report.txt" in {a.path for a in client.list_artifacts(run.info.run_id)}
    assert client.get_model_version_by_alias("wine-classifier", "champion").run_id == run.info.run_id


# -- 4. W&B durations ----------------------------------------------------------------------


def test_wandb_run_logged_through_the_facade_keeps_its_own_start_and_end(
        isolated_env: Path, monkeypatch: pytest.MonkeyPatch, sdk_sockets) -> None:  # noqa: ANN001, ARG001, F811
    """The SDK stamps its start at wandb.init, in the worker, after the facade logged the
    first points; its exit record keeps whole seconds.  A short run then ended before it
    started (ls: duration_s -1.305 after a copy into MLflow).  Start and end are the
    facade's now, on one clock with the points."""
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    wandb_dir = Path(os.environ["WANDB_DIR"])
    wandb_dir.mkdir(parents=True, exist_ok=True)
    with tb.start_run(project="durations", name="short") as run:
        for step in range(50):
            run.log_metrics({"loss": 1 / (step + 1)}, step=step)
    reader = get_backend("wandb-offline", {"path": str(wandb_dir / "wandb")}).reader()
    record = reader.get_run(run.remote_ids["wandb"])
    assert record.start_time == run.start_time
    assert record.end_time is not None and record.end_time >= record.start_time
    assert _cli("copy", f"wandb-offline:{wandb_dir / 'wandb'}", "mlflow").exit_code == 0
    rows = json.loads(_cli("ls", "mlflow:durations", "--json").output)
    assert rows[0]["duration_s"] >= 0 and rows[0]["duration_s"] == (record.end_time - record.start_time) / 1000


# -- 6. rough edges ------------------------------------------------------------------------


def _mlflow_source(isolated_env: Path, runs: int = 1) -> list[str]:
    """Finished runs in experiment "edges" of ./mlflow.db, each with an artifact; their ids."""
    (isolated_env / "report.txt").write_text("a report\n")
    ids = []
    for n in range(runs):
        with tb.start_run(project="edges", name=f"r{n}", config={"n": n}) as run:
            run.log_metrics({"loss": 0.5}, step=0)
            run.log_artifact(isolated_env / "report.txt")
        ids.append(run.remote_ids["mlflow"])
    return ids


def unwritable(tmp: Path) -> str:
    """A folder this process cannot create: a read-only parent, or (root ignores modes)
    a folder in sysfs, which refuses new entries to everyone."""
    if os.geteuid() != 0:
        parent = tmp / "read-only"
        parent.mkdir()
        parent.chmod(0o555)
        return str(parent / "out")
    return "/sys/trackbridge-first-day"


def test_read_only_dir_destination_is_a_clean_error(isolated_env: Path) -> None:
    _mlflow_source(isolated_env)
    target = unwritable(isolated_env)
    _clean_error(_cli("copy", "mlflow:edges", f"dir:{target}"), target, "cannot write", code=2)
    (isolated_env / "a-file").write_text("x")
    _clean_error(_cli("copy", "mlflow:edges", "dir:./a-file/out"), "a-file/out", "cannot write", code=2)


def test_unknown_remote_message_names_the_remote(isolated_env: Path) -> None:
    line = _clean_error(_cli("ls", "prod:churn"), "unknown remote 'prod'")
    assert "[remotes.prod]" in line


def test_copy_reports_finished_runs_changed_at_the_source(isolated_env: Path) -> None:
    from mlflow import MlflowClient

    (run_id,) = _mlflow_source(isolated_env)
    assert _cli("copy", "mlflow:edges", "dir:./out").exit_code == 0
    MlflowClient().set_tag(run_id, "late", "1")
    result = _cli("copy", "mlflow:edges", "dir:./out")
    assert result.exit_code == 0
    assert "changed   edges/r0" in result.output and "trackbridge sync" in result.output
    data = json.loads(_cli("copy", "mlflow:edges", "dir:./out", "--json").stdout)
    assert [c["src_run_id"] for c in data["changed"]] == [run_id]


def test_no_mlflow_progress_bars_or_info_lines(isolated_env: Path) -> None:
    """`Downloading artifacts` bars and `Creating initial MLflow database tables` on every
    command were noise; a fresh process shows what a user sees."""
    _mlflow_source(isolated_env)
    cli = [str(Path(sys.executable).parent / "trackbridge")]
    for args in (["copy", "mlflow:edges", "dir:./out"], ["check", "mlflow:edges", "dir:./out"],
                 ["copy", "mlflow:edges", "dir:./out2"], ["ls", "mlflow:fresh-store-check"]):
        env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{isolated_env / 'mlflow.db'}"}
        if args[0] == "ls":
            env["MLFLOW_TRACKING_URI"] = f"sqlite:///{isolated_env / 'new.db'}"
        done = subprocess.run(cli + args, cwd=isolated_env, capture_output=True, text=True, env=env, timeout=120)
        noise = done.stderr + done.stdout
        assert done.returncode == (2 if args[0] == "ls" else 0), noise
        assert "Downloading artifacts" not in noise and " INFO mlflow" not in noise, noise


def test_plain_progress_has_a_heartbeat_during_one_long_run() -> None:
    from io import StringIO

    from trackbridge.cli.progress import HeartbeatReporter

    stream = StringIO()
    reporter = HeartbeatReporter(stream, interval=0.05)
    reporter.start(0, None, None)
    reporter.more(1, 1_000_000, 0)  # the first run planned, more to come: "1+"
    reporter.advance(points=250_000)
    deadline = time.monotonic() + 5
    while "250,000/1,000,000 points" not in stream.getvalue() and time.monotonic() < deadline:
        time.sleep(0.02)
    reporter.planned()
    reporter.run_done("create", "exp/run")
    reporter.close()
    lines = stream.getvalue().splitlines()
    assert any("0/1+ runs done, 250,000/1,000,000 points" in line for line in lines), lines
    assert lines[-1].startswith("[1/1] create"), lines


def test_check_lists_a_destination_artifact_deleted_by_hand_with_the_other_differences(isolated_env: Path) -> None:
    _mlflow_source(isolated_env)
    assert _cli("copy", "mlflow:edges", "dir:./out").exit_code == 0
    (report,) = (isolated_env / "out").rglob("report.txt")
    report.unlink()
    run_json = report.parents[1] / "run.json"
    run_json.write_text(run_json.read_text().replace('"n": "0"', '"n": "changed"'))
    result = _cli("check", "mlflow:edges", "dir:./out")
    assert result.exit_code == 1
    assert "artifact 'report.txt': cannot be read at the destination" in result.output
    assert "Errno" not in result.output and "0 errors" in result.output
    assert "param" in result.output and "changed" in result.output, "the other difference is listed too"


def _secret_uri(url: str) -> str:
    return url.replace("http://", f"http://alice:{SECRET}@", 1)


def test_no_command_ever_shows_a_password_from_the_tracking_uri(isolated_env: Path, mlflow_server,  # noqa: ANN001
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    """Every command (with --json where it has it), against a real server whose URI carries
    a password, and against an unreachable one (errors quote URLs): the password never shows."""
    from trackbridge.cli import main as group

    monkeypatch.setenv("MLFLOW_TRACKING_URI", _secret_uri(mlflow_server.url))
    experiment = f"secret-{os.getpid()}-{time.monotonic_ns()}"
    (isolated_env / "report.txt").write_text("r\n")
    with caplog.at_level(logging.INFO):
        with tb.start_run(project=experiment, name="r") as run:
            run.log_metrics({"loss": 0.5}, step=0)
            run.log_artifact(isolated_env / "report.txt")
    assert run.remote_ids["mlflow"]
    (isolated_env / "trackbridge.toml").write_text(
        f'[remotes.prod]\nbackend = "mlflow"\ntracking_uri = "{_secret_uri(mlflow_server.url)}"\n')
    commands = [
        ["--help"], ["doctor"], ["doctor", "--json"], ["ls", "mlflow"], ["ls", "mlflow", "--json"],
        ["ls", f"mlflow:{experiment}"], ["ls", f"mlflow:{experiment}", "--json"], ["ls", "prod"],
        ["plan", f"mlflow:{experiment}", "dir:./out"], ["plan", f"mlflow:{experiment}", "dir:./out", "--json"],
        ["copy", f"mlflow:{experiment}", "dir:./out"], ["copy", f"mlflow:{experiment}", "dir:./out", "--json"],
        ["sync", f"mlflow:{experiment}", "dir:./out"], ["sync", f"mlflow:{experiment}", "dir:./out", "--json"],
        ["check", f"mlflow:{experiment}", "dir:./out"], ["check", f"mlflow:{experiment}", "dir:./out", "--json"],
        ["export", f"prod:{experiment}", "dir:./exported"], ["import", "dir:./exported", f"mlflow:{experiment}-back"],
        ["check", "dir:./exported", f"mlflow:{experiment}-back", "--json"], ["ls", "mlflow:no-such-experiment"],
        ["replay"], ["replay", "--dry-run"],
    ]
    seen = []
    for args in commands:
        result = _cli(*args)
        seen.append(result.exit_code)
        assert SECRET not in result.output, (args, result.output)
        assert "Traceback" not in result.output, (args, result.output)
    assert group.commands.keys() <= {args[0] for args in commands if not args[0].startswith("-")}, \
        "a command was added: add it here"
    assert seen.count(0) >= len(commands) - 1, list(zip(seen, commands))  # only the unknown experiment fails
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:9/")  # nothing listens
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    for args in (["ls", "mlflow"], ["ls", "mlflow:x"], ["doctor"]):  # copy/check would retry for 45 s first
        result = _cli(*args)
        assert SECRET not in result.output and "Traceback" not in result.output, (args, result.output)
    assert "alice:***@127.0.0.1:9" in result.output or "alice:***@127.0.0.1:9" in _cli("ls", "mlflow").output
    assert SECRET not in caplog.text


# -- 7. every command against ordinary mistakes --------------------------------------------

#: words of a fix: every error line says what to do, not only what went wrong.
FIX_WORDS = ("Check", "Fix", "fix", "Choose", "Point", "restore", "remove", "Add", "pass", "use", "Re-create",
             "lists them", "List them", "Install")


def _good_archive(root: Path) -> None:
    """A real archive with one finished run, written by the archive's own writer."""
    from trackbridge.model import MetricPoint, RunStatus

    writer = get_backend("dir", {"path": str(root)}).writer()
    run_id = writer.create_run(writer.ensure_experiment("exp"), name="r", start_time=1_000)
    writer.log_metrics(run_id, [("loss", MetricPoint(0, 0.5, 1_000))])
    writer.finish_run(run_id, RunStatus.FINISHED, end_time=2_000)
    writer.close()


def _commands(src: str, dst: str) -> list[list[str]]:
    """Every command that reads ``src`` (and writes ``dst``), with --json where it has it."""
    out = [["ls", src], ["ls", src, "--json"]]
    for command in ("plan", "copy", "sync", "check", "export"):
        out += [[command, src, dst], [command, src, dst, "--json"]]
    if src.startswith("dir:"):
        out += [["import", src, dst]]
    return out


_CONFIG_MISTAKES = {
    "binary .env": (".env", bytes(range(256)) * 8, ".env"),
    "unclosed quote in .env": (".env", b'TRACKBRIDGE_BACKEND="wandb\n', ".env:1"),
    "bad toml": ("trackbridge.toml", b"backend = \n", "trackbridge.toml"),
    "binary toml": ("trackbridge.toml", bytes(range(128, 256)), "trackbridge.toml"),
}


def _assert_refused(result: Result, args: list[str], thing: str, isolated_env: Path) -> None:
    text = result.output
    assert result.exit_code != 0, (args, text)
    assert "Traceback" not in text and SECRET not in text, (args, text)
    assert not isinstance(result.exception, (AssertionError, AttributeError, TypeError, KeyError, NameError)), \
        (args, repr(result.exception))
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, (args, text)
    assert thing in errors[0] and any(word in errors[0] for word in FIX_WORDS), (args, errors[0])
    assert not (isolated_env / "out").exists(), (args, "half-written destination")


@pytest.mark.parametrize("mistake", sorted(_CONFIG_MISTAKES))
def test_every_command_refuses_a_broken_config_file(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                                    mistake: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"http://alice:{SECRET}@127.0.0.1:9/")
    _good_archive(isolated_env / "good")
    name, content, thing = _CONFIG_MISTAKES[mistake]
    (isolated_env / name).write_bytes(content)
    for args in [["doctor"], ["doctor", "--json"], ["replay"], ["replay", "--dry-run"],
                 *_commands("dir:./good", "dir:./out")]:
        _assert_refused(_cli(*args), args, thing, isolated_env)


@pytest.mark.parametrize(("source", "thing"), [
    ("dir:./nope", "nope"),
    ("wandb-offline:./nope", "nope"),
    ("comet-offline:./nope", "nope"),
    ("dir:./afile", "afile"),
    ("dir:./garbage", "archive.json"),
    ("comet-offline:./cgarbage", "x.zip"),
    ("dir:./empty", "no run"),
    ("prod:exp", "'prod'"),
    ("mlflow:no-such-experiment", "no-such-experiment"),
])
def test_every_command_refuses_a_bad_source(isolated_env: Path, monkeypatch: pytest.MonkeyPatch,
                                            source: str, thing: str) -> None:
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{isolated_env / 'store' / 'mlflow.db'}")
    (isolated_env / "afile").write_text("x")
    (isolated_env / "garbage").mkdir()
    (isolated_env / "garbage" / "archive.json").write_bytes(bytes(range(256)))
    (isolated_env / "cgarbage").mkdir()
    (isolated_env / "cgarbage" / "x.zip").write_bytes(bytes(range(256)) * 4)
    (isolated_env / "empty").mkdir()
    with tb.start_run(project="exists", backend="mlflow") as run:  # the store has a run, not this experiment
        run.log_metrics({"loss": 0.5}, step=0)
    for args in _commands(source, "dir:./out"):
        if args[0] == "ls" and thing == "no run":
            continue  # listing an empty folder is no mistake
        _assert_refused(_cli(*args), args, thing, isolated_env)


def test_every_writing_command_refuses_a_read_only_destination(isolated_env: Path) -> None:
    _good_archive(isolated_env / "good")
    target = unwritable(isolated_env)
    for args in (["copy", "dir:./good", f"dir:{target}"], ["sync", "dir:./good", f"dir:{target}"],
                 ["export", "dir:./good", f"dir:{target}"], ["import", "dir:./good", f"dir:{target}"],
                 ["copy", "dir:./good", f"dir:{target}", "--json"]):
        _assert_refused(_cli(*args), args, target, isolated_env)
        assert not Path(target).exists()


def test_plan_counts_an_experiment_the_destination_renames(isolated_env: Path) -> None:
    """W&B project names cannot hold '/': experiment team/proj/exp becomes project
    team-proj-exp, which plan lists and counts as a rename."""
    with tb.start_run(project="team/proj/exp", name="r") as run:
        run.log_metrics({"loss": 1.0}, step=0)
    result = _cli("plan", "mlflow", "wandb-offline:./w")
    assert result.exit_code == 0, result.output
    assert "rename    experiment 'team/proj/exp' -> 'team-proj-exp'" in result.output
    assert re.search(r"^renamed 1,", result.output, re.M), result.output
    data = json.loads(_cli("plan", "mlflow", "wandb-offline:./w", "--json").stdout)
    assert data["experiment_renames"] == {"team/proj/exp": "team-proj-exp"}
    assert _cli("copy", "mlflow", "wandb-offline:./w").exit_code == 0
    assert _cli("check", "mlflow", "wandb-offline:./w").exit_code == 0


def test_trackbridge_log_lines_are_masked(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="trackbridge"):
        logging.getLogger("trackbridge").warning("backend at %s failed", f"https://bob:{SECRET}@h/x?api_key={SECRET}")
    assert SECRET not in caplog.text and "bob:***@h/x?api_key=***" in caplog.text


def test_every_trackbridge_logger_is_masked() -> None:
    """A warning from any trackbridge module quoting a URL with a password shows it masked:
    the masking filter sits on the ``trackbridge`` logger, which filters only its own records,
    so no module may log through a child logger."""
    import pathlib
    import re

    import trackbridge

    root = pathlib.Path(trackbridge.__file__).parent
    children = [str(p.relative_to(root)) for p in root.rglob("*.py")
                if re.search(r"logging\.getLogger\((?!\"trackbridge\"\))", p.read_text(encoding="utf-8"))]
    assert children == []
