"""``trackbridge replay``: send what the logging facade spooled while a backend was down."""
from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from trackbridge.cli.output import console, fail
from trackbridge.config import load_config
from trackbridge.errors import TrackbridgeError


@click.command()
@click.option("--dry-run", is_flag=True, help="List what would be sent; send nothing.")
@click.option("--remote", "remotes", multiple=True, metavar="NAME", help="Only runs spooled for this remote (repeatable).")
@click.option("--run", "run_ids", multiple=True, metavar="ID", help="Only this local run id or id prefix (repeatable).")
def replay(dry_run: bool, remotes: tuple[str, ...], run_ids: tuple[str, ...]) -> None:
    """Send runs the logging facade left in its journal (TRACKBRIDGE_HOME/spool): a
    backend was unreachable, or the process was killed (SIGKILL, the OOM killer) before
    it sent everything.  Resumes exactly after the last operation the backend
    confirmed, so running it twice never duplicates anything.  A run its process never
    finished is marked KILLED at the time of its last point.  Runs still owned by a
    live process are skipped: that process sends them itself."""
    from trackbridge.facade.replay import Replayer, SpoolBusy, list_spooled

    try:
        config = load_config()
        pending = list_spooled(config.home, remotes, run_ids)
    except TrackbridgeError as exc:
        fail(str(exc))
    if not pending:
        console.print(f"Nothing to replay in {config.home / 'spool'}.")
        return
    table = Table("run", "remote", "operations", "points", "result", title="dry run" if dry_run else "replay")
    if dry_run:
        for run in pending:
            if run.busy:
                result = f"owned by a running process (pid {run.meta.get('pid', '?')})"
            else:
                result = "would send" + (", mark KILLED (never finished)" if run.unfinished else "")
            table.add_row(run.label, run.remote, str(run.ops), f"{run.points:,}", result)
        console.print(table)
        return

    replayer = Replayer(config)
    failures = 0
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=console, transient=True,
    ) as progress:
        for run in pending:
            task = progress.add_task(f"{run.remote} {run.label}", total=run.ops)
            try:
                stats = replayer.replay(run, on_op=lambda _op, task=task: progress.advance(task))
            except SpoolBusy as exc:
                table.add_row(run.label, run.remote, str(run.ops), f"{run.points:,}", f"[yellow]skipped[/]: {exc}")
                continue
            except Exception as exc:  # one run failing must not stop the others
                failures += 1
                table.add_row(run.label, run.remote, str(run.ops), f"{run.points:,}", f"[red]failed[/]: {exc}")
                continue
            result = "[green]sent[/]"
            if stats.killed_at is not None:
                result += f", marked KILLED at {_when(stats.killed_at)} (its process ended without finishing it)"
            elif not stats.finished:
                result += " (run was never finished by its process)"
            for reason in stats.rejected:
                result += f"\n[yellow]refused[/]: {reason}"
            table.add_row(run.label, run.remote, str(stats.ops), f"{stats.points:,}", result)
    console.print(table)
    if failures:
        fail(f"{failures} run(s) could not be sent; they stay in the spool. Check the backend and run replay again.", 1)


def _when(ms: int) -> str:
    import datetime

    return datetime.datetime.fromtimestamp(ms / 1000).isoformat(sep=" ", timespec="seconds")


COMMANDS = [replay]
