"""The ``trackbridge`` command.  Thin: parsing and printing only; work lives in
the library (``trackbridge.sync``, ``trackbridge.facade``, backends)."""
from __future__ import annotations

import click

from trackbridge import __version__
from trackbridge.backends import infos
from trackbridge.cli import info, replay, transfer


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="trackbridge")
def main() -> None:
    """One logging API for MLflow, Comet, W&B and Azure ML, and copy/sync/check
    of run history between them.

    \b
    Remotes are written REMOTE[:EXPERIMENT]:
      mlflow            the MLflow backend configured by MLFLOW_TRACKING_URI / .env
                        (default: ./mlflow.db, embedded, no server)
      prod:churn        experiment "churn" of the remote [remotes.prod] in trackbridge.toml
                        (or TRACKBRIDGE_REMOTE_PROD_BACKEND=... in the environment)
{path_remotes}
      wandb:ENTITY/PROJECT, comet:WORKSPACE/PROJECT, azureml:EXPERIMENT
                        the clouds, with keys from the environment or .env

    'trackbridge doctor' lists every backend, how to install it and what it reads.
    """


def _path_remote_lines() -> str:
    """One help line per path remote, from each backend's own info (a new backend's
    folder adds its line; nothing is listed here by hand)."""
    lines = []
    for name, backend in infos().items():
        if backend.path_remote:
            form = f"{name}:PATH"
            text = backend.summary.removesuffix(f", {form}") + (" (read-only: a source)" if backend.read_only else "")
            lines.append(f"      {form:<24}{text}")
    return "\n".join(lines)


main.help = (main.help or "").replace("{path_remotes}", _path_remote_lines())

for module in (info, replay, transfer):
    for command in module.COMMANDS:
        main.add_command(command)
