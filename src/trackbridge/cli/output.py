"""Printing helpers shared by the commands: rich on a terminal, plain otherwise."""
from __future__ import annotations

import json
import sys
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from trackbridge.redact import mask, mask_all

#: Off a terminal (pipes, CI logs) rich would wrap tables at 80 columns and cut
#: run ids; a wide fixed width keeps every value whole and greppable.
_WIDTH = None if sys.stdout.isatty() else 200
console = Console(highlight=False, width=_WIDTH)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """JSON on stdout, with the credentials of every URL in it masked."""
    click.echo(json.dumps(mask_all(data), indent=2, sort_keys=True, default=str, allow_nan=True))


def fail(message: str, code: int = 2) -> None:
    """Print an error the user can act on and exit (no traceback).  The message is
    shown as written: credentials in URLs masked, and brackets kept (rich would take
    ``[remotes.prod]`` for markup and print nothing)."""
    err_console.print(f"[bold red]error:[/] {escape(mask(message))}")
    sys.exit(code)
