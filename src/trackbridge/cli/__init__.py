"""The ``trackbridge`` command.  Thin: parsing and printing only; work lives in
the library (``trackbridge.sync``, ``trackbridge.facade``, backends)."""
from __future__ import annotations

import click

from trackbridge import __version__
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
      dir:./backup      the vendor-neutral archive folder ./backup
      wandb-offline:./wandb    W&B offline run folders (what `wandb sync` uploads)
      comet-offline:./archives Comet offline archives (what `comet upload` uploads)
      wandb:ENTITY/PROJECT, comet:WORKSPACE/PROJECT, azureml:EXPERIMENT
                        the clouds, with keys from the environment or .env

    'trackbridge doctor' lists every backend, how to install it and what it reads.
    """


for module in (info, replay, transfer):
    for command in module.COMMANDS:
        main.add_command(command)
