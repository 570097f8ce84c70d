"""Printing helpers shared by the commands: rich on a terminal, plain otherwise."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console

#: Off a terminal (pipes, CI logs) rich would wrap tables at 80 columns and cut
#: run ids; a wide fixed width keeps every value whole and greppable.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str, allow_nan=True))


def fail(message: str, code: int = 2) -> None:
    """Print an error the user can act on and exit (no traceback)."""
    err_console.print(f"[bold red]error:[/] {message}")
    sys.exit(code)
