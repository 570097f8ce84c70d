"""``trackbridge doctor`` and ``trackbridge ls``: read-only views of config and remotes."""
from __future__ import annotations

import os
from datetime import datetime, timezone
from typing import Any

import click
from rich.markup import escape
from rich.table import Table

from trackbridge.backends import infos
from trackbridge.cli.output import console, fail, print_json
from trackbridge.cli.sources import require_path
from trackbridge.config import SETTINGS, load_config
from trackbridge.errors import TrackbridgeError
from trackbridge.model import RunRecord
from trackbridge.redact import mask, mask_all
from trackbridge.remotes import parse_remote

def env_vars() -> dict[str, bool]:
    """Every variable a backend reads (from the backends' info tables), mapped to
    whether it is a secret."""
    found: dict[str, bool] = {}
    for info in infos().values():
        found.update(info.env_vars)
    return found


def _diagnoses(config: Any) -> dict[str, list[str]]:
    """What each backend says about itself (``Backend.diagnose``): the remotes of the
    config file with their options, and each installed backend configured by the
    environment alone.  Opening a backend makes no connection."""
    from trackbridge.backends import get_backend
    from trackbridge.backends.base import Backend

    targets: dict[str, tuple[str, dict[str, Any]]] = {}
    for name, info in infos().items():
        if not info.path_remote and info.sdk_version():
            targets[name] = (name, {})
    for name, opts in config.remotes.items():
        options = {k: v for k, v in opts.items() if k != "backend"}
        targets[f"remote {name}"] = (str(opts["backend"]), options)
    found: dict[str, list[str]] = {}
    for where, (backend, options) in targets.items():
        try:
            instance = get_backend(backend, options)
            if type(instance).diagnose is Backend.diagnose:
                continue
            lines = instance.diagnose()
        except TrackbridgeError as exc:
            lines = [str(exc)]
        if lines:
            found[where] = lines
    return found


def _masked(value: str | None, secret: bool) -> str:
    if value is None:
        return "[dim]not set[/]"
    return "set (hidden)" if secret else escape(mask(value))


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def doctor(as_json: bool) -> None:
    """Show the resolved configuration and where each value came from, the
    installed backends with their SDK versions, and which credentials are set
    (secrets are never printed, only whether they are set)."""
    try:
        config = load_config()
    except TrackbridgeError as exc:
        fail(str(exc))
    variables = env_vars()
    table_of = infos()
    report: dict[str, Any] = {
        "settings": {name: {"value": s.value, "origin": s.origin} for name, s in config.settings.items()},
        "dotenv": str(config.dotenv_path) if config.dotenv_path else None,
        "remotes": {name: {k: v for k, v in opts.items() if not k.endswith("_env")} for name, opts in config.remotes.items()},
        "backends": {name: {"target": info.target, "sdk": info.sdk_distribution,
                            "sdk_version": info.sdk_version(),
                            "extra": info.extra, "remote": f"{name}:PATH" if info.path_remote else name,
                            "summary": info.summary}
                     for name, info in sorted(table_of.items())},
        "credentials": {var: ("set" if var in os.environ else "not set") if secret else os.environ.get(var)
                        for var, secret in sorted(variables.items())},
    }
    report["checks"] = _diagnoses(config)
    report = mask_all(report)  # a URL may carry a password, whatever its source
    if as_json:
        print_json(report)
        return
    table = Table(title="Settings (highest precedence wins: argument > env > .env > trackbridge.toml > pyproject > default)")
    for col in ("setting", "value", "origin", "env var"):
        table.add_column(col)
    for name, s in report["settings"].items():
        table.add_row(name, escape(str(s["value"])), s["origin"], SETTINGS[name][0])
    console.print(table)
    if config.dotenv_path:
        console.print(f".env loaded from {config.dotenv_path}: {', '.join(sorted(config.dotenv_keys))}")
    backends = Table(title="Backends")
    for col in ("backend", "remote", "SDK", "installed", "install with"):
        backends.add_column(col)
    for name, info in report["backends"].items():
        install = f"pip install 'trackbridge[{info['extra']}]'" if info["extra"] else "-"
        backends.add_row(name, info["remote"], info["sdk"] or "-", info["sdk_version"] or "[yellow]no[/]",
                         install if not info["sdk_version"] else "")
    console.print(backends)
    if config.remotes:
        remotes = Table(title=f"Remotes ({config.remotes_origin})")
        remotes.add_column("remote")
        remotes.add_column("options")
        for name, opts in report["remotes"].items():
            remotes.add_row(name, escape(", ".join(f"{k}={v}" for k, v in opts.items())))
        console.print(remotes)
    for where, lines in report["checks"].items():
        for line in lines:
            console.print(f"{where}: {line}", markup=False, highlight=False)
    creds = Table(title="Environment variables read by backends")
    creds.add_column("variable")
    creds.add_column("value")
    for var, secret in sorted(variables.items()):
        creds.add_row(var, _masked(os.environ.get(var), secret))
    console.print(creds)


def _iso(ms: int | None) -> str:
    if ms is None:
        return "-"
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


def _run_row(run: RunRecord) -> dict[str, Any]:
    duration = (run.end_time - run.start_time) / 1000 if run.end_time and run.start_time else None
    return {
        "run_id": run.run_id, "name": run.name, "status": run.status.value,
        "start": _iso(run.start_time), "duration_s": duration, "parent": run.parent_run_id,
        "params": len(run.params), "metrics": len(run.metrics), "tags": len(run.tags),
    }


@click.command(name="ls")
@click.argument("remote")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
def ls(remote: str, as_json: bool) -> None:
    """List experiments of REMOTE, or runs of REMOTE:EXPERIMENT.

    \b
    Examples:
      trackbridge ls mlflow               experiments of the default MLflow store
      trackbridge ls mlflow:quickstart    runs of experiment "quickstart"
      trackbridge ls dir:./backup --json
    """
    try:
        spec = parse_remote(remote, load_config())
        require_path(spec)
        reader = spec.open().reader()
        if spec.experiment is None:
            rows = []
            for exp in reader.list_experiments():
                rows.append({"id": exp.id, "name": exp.name, "runs": sum(1 for _ in reader.list_runs(exp.name))})
            title, columns = f"Experiments in {remote}", ("id", "name", "runs")
        else:
            if reader.get_experiment(spec.experiment) is None:
                fail(f"no experiment {spec.experiment!r} in {spec.remote}; `trackbridge ls {spec.remote}` lists them")
            rows = [_run_row(run) for run in reader.list_runs(spec.experiment)]
            title = f"Runs in {remote}"
            columns = ("run_id", "name", "status", "start", "duration_s", "parent", "params", "metrics", "tags")
    except TrackbridgeError as exc:
        fail(str(exc))
    if as_json:
        print_json(rows)
        return
    table = Table(title=escape(mask(title)))
    for col in columns:
        table.add_column(col)
    for row in rows:
        table.add_row(*("-" if row[c] is None else str(row[c]) for c in columns))
    console.print(table)


COMMANDS = [doctor, ls]
