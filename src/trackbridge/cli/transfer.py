"""``trackbridge plan|copy|sync|check|export|import``: thin wrappers over :mod:`trackbridge.sync`.

Parsing arguments into a :class:`Selection` and printing results is all that
happens here; planning, transferring and verifying live in the library.
Exit codes: 0 success / no differences, 1 failures or differences,
2 a usage or configuration error.
"""
from __future__ import annotations

import contextlib
import functools
import gc
import sys
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click
from rich.markup import escape

from trackbridge.backends import path_remote_forms
from trackbridge.backends.base import Backend, RunFilter
from trackbridge.cli.output import console, err_console, fail, print_json
from trackbridge.cli.progress import reporter_for
from trackbridge.cli.sources import require_path, require_runs, require_writable
from trackbridge.config import load_config
from trackbridge.errors import ConfigError, TrackbridgeError
from trackbridge.model import RunStatus
from trackbridge.redact import mask
from trackbridge.remotes import RemoteSpec, parse_remote
from trackbridge.sync.check import CheckReport, Checker
from trackbridge.sync.engine import Options, Outcome, SyncEngine, target_of
from trackbridge.sync.ledger import Ledger
from trackbridge.sync.plan import Action, Plan, Selection
from trackbridge.sync.progress import summary_table
from trackbridge.sync.shard import Shard

REMOTES_HELP = (f"SRC and DST are REMOTE[:EXPERIMENT] or a path remote ({', '.join(path_remote_forms())}) "
                "(see 'trackbridge --help').")


# -- argument parsing -----------------------------------------------------------


def _pairs(values: tuple[str, ...], option: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, val = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", param_hint=option)
        out[key] = val
    return out


def _millis(value: str | None, option: str) -> int | None:
    """ISO date or datetime (naive = UTC) -> epoch milliseconds."""
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO date/time: {value!r} (e.g. 2026-01-31 or 2026-01-31T12:00)",
                                 param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


def _selection(src: RemoteSpec, dst: RemoteSpec, opts: dict[str, Any]) -> Selection:
    experiments = [src.experiment] if src.experiment else list(opts["experiment"]) or None
    run_filter = RunFilter(
        run_ids=list(opts["run_id"]) or None,
        since=_millis(opts["since"], "--since"),
        until=_millis(opts["until"], "--until"),
        statuses=[RunStatus(s.upper()) for s in opts["status"]] or None,
        tags=_pairs(opts["tag"], "--tag"),
        params=_pairs(opts["param"], "--param"),
    )
    rename = _pairs(opts["rename_experiment"], "--rename-experiment")
    if dst.experiment and rename:
        raise click.UsageError("give either DST:EXPERIMENT or --rename-experiment, not both")
    shard = Shard.parse(opts["shard"]) if opts.get("shard") else None
    return Selection(experiments, run_filter, rename, into=dst.experiment, shard=shard)


def _open(src_arg: str, dst_arg: str) -> tuple[RemoteSpec, RemoteSpec, Backend, Backend, Any]:
    config = load_config()
    src, dst = parse_remote(src_arg, config), parse_remote(dst_arg, config)
    require_path(src)
    require_writable(dst)
    if src.backend == dst.backend and src.options == dst.options and not (
            src.experiment and dst.experiment and src.experiment != dst.experiment):
        raise ConfigError(
            f"source {src} and destination {dst} are the same store: name two different experiments "
            "(REMOTE:EXPERIMENT on both sides), or give two different remotes"
        )
    return src, dst, src.open(), dst.open(), config


def vendor_output_to_stderr() -> contextlib.AbstractContextManager[Any]:
    """Vendor SDKs print to stdout (MLflow: "View run ... at: URL"); keep stdout for
    our own output so ``--json`` stays parseable."""
    return contextlib.redirect_stdout(sys.stderr)


def selection_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Filters shared by every command (they become a RunFilter)."""
    decorators = [
        click.option("--experiment", multiple=True, metavar="NAME",
                     help="Only this source experiment (repeatable). Default: all, or SRC:EXPERIMENT."),
        click.option("--run-id", multiple=True, metavar="ID", help="Only this source run (repeatable)."),
        click.option("--since", metavar="DATE", help="Only runs started at or after DATE (ISO, UTC if no zone)."),
        click.option("--until", metavar="DATE", help="Only runs started before DATE."),
        click.option("--status", multiple=True, type=click.Choice([s.value for s in RunStatus], case_sensitive=False),
                     help="Only runs with this status (repeatable)."),
        click.option("--tag", multiple=True, metavar="K=V", help="Only runs with tag K equal to V (repeatable)."),
        click.option("--param", multiple=True, metavar="K=V", help="Only runs with param K equal to V (repeatable)."),
        click.option("--rename-experiment", multiple=True, metavar="OLD=NEW",
                     help="Write source experiment OLD into destination experiment NEW (repeatable)."),
        click.option("--transfers", default=4, show_default=True, type=click.IntRange(1, 64),
                     help="Runs processed in parallel."),
        click.option("--shard", metavar="I/N",
                     help="Only part I (0-based) of N of the selected runs, for N workers copying at once "
                          "(a run goes with its parent). The registry is left to one last run without --shard."),
        click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON on stdout."),
        click.option("--allow-empty", is_flag=True,
                     help="A source holding no run is not an error (by default it is: a mistyped path "
                          "would otherwise 'succeed' with nothing copied)."),
    ]
    return functools.reduce(lambda f, d: d(f), reversed(decorators), fn)


def executor_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Where copy/sync run: here, or as Ray tasks (docs/scaling.md)."""
    decorators = [
        click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
                     help="ray: copy the runs as --shards Ray tasks (retried by Ray), then copy the registry here. "
                          "Needs pip install 'trackbridge[ray]'."),
        click.option("--shards", default=8, show_default=True, type=click.IntRange(1, 100_000),
                     help="With --executor ray: how many parts (tasks) the runs are split into."),
        click.option("--ray-address", metavar="ADDRESS",
                     help="With --executor ray: an existing cluster (ray://HOST:10001, or 'auto'); "
                          "default: a local Ray instance on 127.0.0.1."),
    ]
    return functools.reduce(lambda f, d: d(f), reversed(decorators), fn)


def _guard(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Turn trackbridge errors, and a file or folder the system refuses (permissions, a
    full disk) that no backend turned into one, into a one-line message and exit code 2."""
    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TrackbridgeError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.filename or 'a file'}: {exc.strerror or exc}. Check the path and its permissions.")
    return wrapper


# -- printing -------------------------------------------------------------------


def _echo(line: str) -> None:
    """A line on stdout, credentials in URLs masked (run URLs, remote options...)."""
    click.echo(mask(line))


_SYMBOL = {Action.CREATE: "+", Action.RESUME: "~", Action.UPDATE: "*", Action.CHANGED: "?", Action.UNCHANGED: "="}


def experiment_renames(plan: Plan, dst: Backend) -> dict[str, str]:
    """Destination experiments whose name the destination changes (W&B: ``team/proj/exp``
    becomes project ``team-proj-exp``): name -> the name it gets there."""
    names = set(plan.experiments) | {run.dst_experiment for run in plan.runs}
    return {name: dst.experiment_name(name) for name in sorted(names) if dst.experiment_name(name) != name}


def render_plan(plan: Plan, renames: dict[str, str]) -> None:
    """rclone-like lines, then what changes to fit the destination, then totals."""
    for run in plan.runs:
        send = ", ".join(run.delta.describe()) if run.action.writes else ""
        note = {Action.CHANGED: "changed at source; copy leaves finished runs alone (use sync)"}.get(run.action, "")
        line = f"{_SYMBOL[run.action]} {run.action.value:<9} {run.label} -> {run.dst_experiment}"
        _echo(line + (f"  [{send}]" if send else "") + (f"  ({note})" if note else ""))
        record = run.fitted.record
        for new, old in record.renamed.items():
            _echo(f"    rename   {old!r} -> {new!r}")
        for key, length in record.truncated.items():
            _echo(f"    truncate {key!r} ({length} characters)")
        for key, reason in record.dropped.items():
            _echo(f"    drop     {key!r}: {reason}")
        for key, where in record.kept.items():
            _echo(f"    keep     {key!r}: {where}")
        for error in run.fitted.errors:
            _echo(f"    error    {error}")
        if run.duplicates:
            _echo(f"    warning  also copied as {', '.join(run.duplicates)}")
    for deletion in plan.deletions:
        _echo(f"- delete    {deletion.dst_experiment}/{deletion.dst.name or deletion.dst.run_id} "
                      f"(source run {deletion.source_run_id} is gone)")
    for model in plan.registry:
        for version in model.versions:
            if version.action != "unchanged":
                reason = f": {version.reason}" if version.reason else ""
                _echo(f"  model     {model.src.name} v{version.src.version} {version.action}{reason}")
        for alias, version_number in model.aliases.items():
            _echo(f"  alias     {model.src.name}@{alias} -> source v{version_number}")
        for alias in model.remove_aliases:
            _echo(f"  unalias   {model.src.name}@{alias} (removed at the source)")
    for old, new in renames.items():
        _echo(f"  rename    experiment {old!r} -> {new!r} (the destination's naming rules; found again by either name)")
    for line in plan.transformations:
        _echo(f"  note      {line}")
    t = plan.totals()
    points = f"{t['points']:,}" if t["points_exact"] else (
        f"~{t['points']:,} (estimate from the last step of each series; --exact-points counts them)")
    _echo(
        f"\n{plan.mode}: {t['create']} to create, {t['resume']} to resume, {t['update']} to update, "
        f"{t['unchanged']} unchanged" + (f", {t['changed']} changed (not touched by copy)" if t["changed"] else "")
        + (f", {t['delete']} to delete" if t["delete"] else "")
        + f"\nmetric points: {points}\nartifacts: {t['artifacts']} files, {t['artifact_bytes']:,} bytes"
        + (f"\ntags to delete: {t['tags_to_delete']}, renames: {t['renames']}"
           if t["tags_to_delete"] or t["renames"] else "")
        + f"\nregistry: {t['model_versions']} versions to create, {t['aliases']} aliases to set, "
        f"{t['aliases_to_remove']} aliases to remove"
        + f"\nrenamed {t['renamed'] + len(renames)}, truncated {t['truncated']}, dropped {t['dropped']}, "
        f"kept elsewhere {t['kept_elsewhere']}, errors {t['errors']}"
    )


def _open_pair(src_arg: str, dst_arg: str) -> tuple[Backend, Backend]:
    """Source and destination opened from the command line's remotes (in a Ray worker)."""
    _src, _dst, src_backend, dst_backend, _config = _open(src_arg, dst_arg)
    return src_backend, dst_backend


def _run_executor(src_arg: str, dst_arg: str, selection: Selection, options: Options,
                  opts: dict[str, Any]) -> list[dict[str, Any]]:
    """``--executor ray``: the selection's shards as Ray tasks first (each line printed as
    it ends); the caller's own pass then finds their runs unchanged and copies the registry."""
    if opts.get("executor", "local") == "local":
        return []
    if selection.shard is not None:
        raise ConfigError("--executor ray makes the shards itself: drop --shard")
    from trackbridge.sync.ray_executor import run_shards  # Ray only when asked for

    count = opts["shards"]

    def done(index: int, result: dict[str, Any]) -> None:
        stats = result.get("stats", {})
        state = "ok" if result.get("ok") else "failed: " + "; ".join(result.get("errors", []))[:300]
        err_console.print(mask(f"shard {index}/{count}: {stats.get('runs_created', 0)} created, "
                               f"{stats.get('points', 0):,} points, {state}"), markup=False, highlight=False)

    return run_shards(functools.partial(_open_pair, src_arg, dst_arg), selection, options, count,
                      address=opts.get("ray_address"), on_done=done)


def _print_outcome(outcome: Outcome, as_json: bool, shards: list[dict[str, Any]] | None = None) -> None:
    """The summary, then finished runs that changed at the source and were left alone
    (copy's promise: reported, so a copy in cron does not hide that a mirror is stale),
    then errors.  ``shards``: what the executor's tasks did before this pass."""
    changed = [run for run in outcome.plan.runs if run.action is Action.CHANGED]
    for shard in shards or []:
        outcome.errors.extend(shard.get("errors", []))
        outcome.stats.add(**{k: v for k, v in shard.get("stats", {}).items()
                             if isinstance(v, int) and k not in ("runs_selected",)})
    if as_json:
        data = outcome.to_json()
        if shards:
            data["shards"] = shards
        data["changed"] = [{"src_run_id": run.src.run_id, "name": run.src.name, "experiment": run.src.experiment,
                            "dst_experiment": run.dst_experiment} for run in changed]
        print_json(data)
        return
    console.print(summary_table(outcome.stats))
    for run in changed:
        _echo(f"{_SYMBOL[Action.CHANGED]} changed   {run.label} -> {run.dst_experiment}  (changed at the "
              "source since it was copied; copy leaves finished runs alone: `trackbridge sync` updates it)")
    if changed:
        _echo(f"{len(changed)} run(s) changed at the source and were not updated (use sync)")
    for error in outcome.errors:
        err_console.print(f"[red]error:[/] {escape(mask(error))}", markup=True, highlight=False)


# -- commands -------------------------------------------------------------------


def _report_option(fn: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--report", type=click.Path(dir_okay=False, writable=True, path_type=Path), metavar="FILE.html",
                        help="Also write a self-contained HTML report a person can look at (no network when "
                             "opened; credentials masked).")(fn)


def _described(spec: RemoteSpec, backend: Backend) -> str:
    """A remote as the report names it: as typed, and where it points (masked)."""
    where = backend.describe()
    return mask(where if where.startswith(str(spec)) else f"{spec} ({where})")


def _settle_heap() -> None:
    """Before a long copy or check: what is loaded now (the SDKs' modules: MLflow's alone
    is ~500k objects) lives until the end, so it is left out of the garbage collector's
    passes, and the young generations are collected less often: a copy streams millions
    of short-lived points, and the collector's passes over the batches in flight were a
    fifth of a copy into sqlite (W&B 4M points: 62 -> 51 s; into dir: 36 -> 33 s).
    Cycles are still collected, after 50,000 allocations instead of 700."""
    gc.freeze()
    gc.set_threshold(50_000, 20, 100)


def _transfer(mode: str, src_arg: str, dst_arg: str, *, dry_run: bool, delete: bool, max_delete: int,
              exact_points: bool, opts: dict[str, Any], report: Path | None = None) -> None:
    src, dst, src_backend, dst_backend, config = _open(src_arg, dst_arg)
    selection = _selection(src, dst, opts)
    if selection.shard is not None and delete:
        raise ConfigError("--delete cannot be combined with --shard: a shard sees only its part of the source. "
                          "Delete in the last run without --shard.")
    as_json = opts["as_json"]
    reporter = reporter_for(err_console, quiet=as_json or dry_run)
    ledger = None if dry_run else Ledger.in_home(config.home)
    options = Options(mode=mode, transfers=opts["transfers"], dry_run=dry_run, delete=delete,
                      max_delete=max_delete, exact_points=exact_points)
    engine = SyncEngine(src_backend, dst_backend, options, ledger=ledger, reporter=reporter)
    _settle_heap()
    shards = _run_executor(src_arg, dst_arg, selection, options, opts) if not dry_run else []
    try:
        with vendor_output_to_stderr():
            # a real copy plans as it goes: its first runs are written while later ones are read
            outcome = None if dry_run else engine.run(selection)
            plan = engine.plan(selection) if outcome is None else outcome.plan
            if not (plan.runs or plan.registry or opts["allow_empty"]):
                require_runs(src, src_backend, selection.experiments)
    finally:
        engine.src.close()  # run() closed them already; a plan alone did not
        engine.dst.close()
        if ledger is not None:
            ledger.close()
    if outcome is None:
        renames = experiment_renames(plan, dst_backend)
        if report is not None:
            from trackbridge.report import write_plan_report  # only when asked: the report's modules

            write_plan_report(report, plan, renames, source=_described(src, src_backend),
                              destination=_described(dst, dst_backend))
            err_console.print(f"report: {report}", markup=False, highlight=False)
        print_json({**plan.to_json(), "experiment_renames": renames}) if as_json else render_plan(plan, renames)
        raise SystemExit(1 if plan.totals()["errors"] else 0)
    _print_outcome(outcome, as_json, shards)
    if outcome.ok and not as_json:
        for step in dst_backend.next_steps():
            err_console.print(f"next: {step}", markup=False, highlight=False)
    raise SystemExit(0 if outcome.ok else 1)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--mode", type=click.Choice(["copy", "sync"]), default="sync", show_default=True,
              help="Plan as 'copy' (never touches finished runs) or 'sync' (updates changed runs).")
@click.option("--delete", is_flag=True, help="Also list destination runs whose source run is gone.")
@click.option("--exact-points", is_flag=True, help="Count metric points exactly (streams every series).")
@_report_option
@selection_options
@_guard
def plan(src: str, dst: str, mode: str, delete: bool, exact_points: bool, report: Path | None, **opts: Any) -> None:
    """Show what copy/sync from SRC to DST would do, writing nothing.

    Per run: + create, ~ resume (half-written by an interrupted copy),
    * update (changed at source), = unchanged, ? changed at source but left
    alone (copy mode). Also lists what is renamed,
    truncated or dropped to fit DST, deletions (with --delete), registry
    versions and aliases, and totals (runs, metric points, artifact bytes).
    """
    _transfer(mode, src, dst, dry_run=True, delete=delete, max_delete=0, exact_points=exact_points, opts=opts,
              report=report)


plan.help = (plan.help or "") + "\n\n" + REMOTES_HELP


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--dry-run", is_flag=True, help="Print the plan (same as 'trackbridge plan --mode copy'); write nothing.")
@click.option("--exact-points", is_flag=True, help="With --dry-run: count metric points exactly.")
@selection_options
@executor_options
@_guard
def copy(src: str, dst: str, dry_run: bool, exact_points: bool, **opts: Any) -> None:
    """Copy runs from SRC to DST that DST does not have yet; never deletes.

    Re-running is safe: copied runs are recognised by their provenance tags
    (trackbridge.source.*), so nothing is duplicated, and a copy interrupted
    at any point is resumed. Finished runs that changed at the source are
    reported but left alone: use 'sync' to update them.
    """
    _transfer("copy", src, dst, dry_run=dry_run, delete=False, max_delete=0, exact_points=exact_points, opts=opts)


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--dry-run", is_flag=True, help="Print the plan (same as 'trackbridge plan'); write nothing.")
@click.option("--delete", is_flag=True, help="Delete destination runs whose source run is gone.")
@click.option("--max-delete", default=0, show_default=True, type=click.IntRange(0),
              help="With --delete: refuse (and delete nothing) if more runs than this would be deleted.")
@click.option("--exact-points", is_flag=True, help="With --dry-run: count metric points exactly.")
@selection_options
@executor_options
@_guard
def sync(src: str, dst: str, dry_run: bool, delete: bool, max_delete: int, exact_points: bool, **opts: Any) -> None:
    """Make DST mirror SRC: create new runs, send only the delta of changed runs
    (new points, tags, params, artifacts, status, registry versions and aliases).

    Unchanged runs cost one comparison of a source fingerprint with the
    completion marker on the destination run. With --delete, destination runs
    whose source was deleted are deleted too, at most --max-delete of them,
    and never after an error in the same invocation.
    """
    _transfer("sync", src, dst, dry_run=dry_run, delete=delete, max_delete=max_delete,
              exact_points=exact_points, opts=opts)


def _print_check(report: CheckReport, as_json: bool) -> None:
    if as_json:
        print_json(report.to_json())
        return
    for finding in report.findings:
        target = f" -> {finding.dst_id}" if finding.dst_id and finding.kind == "run" else ""
        _echo(f"{finding.symbol} {finding.label} ({finding.src_id}{target})")
        for detail in finding.details:
            _echo(f"    {detail}")
    counts = report.to_json()["counts"]
    _echo(f"\n{counts['equal']} equal, {counts['missing']} missing at destination, "
               f"{counts['differ']} differ, {counts['error']} errors")


@click.command()
@click.argument("src")
@click.argument("dst")
@click.option("--no-download", is_flag=True,
              help="Compare artifacts by listing (path, size, known digests) without downloading them.")
@_report_option
@selection_options
@_guard
def check(src: str, dst: str, no_download: bool, report: Path | None, **opts: Any) -> None:
    """Verify DST against SRC value by value; exit 1 on any difference.

    \b
    Compared: params, tags, every metric point (step, value, timestamp; NaN
    equals NaN), artifact contents (sha256), logged models, dataset inputs,
    parent links, times, status, notes, user, registry versions and aliases.
    Renames/truncations recorded in the run's trackbridge.mapping tag, what
    DST cannot hold (its declared features: kept in trackbridge.source.* tags
    or recorded as dropped) and trackbridge's own tags are not differences.
    \b
    Per run: = equal, + missing at destination, * differs (details below it),
    ! could not be checked.
    """
    src_spec, dst_spec, src_backend, dst_backend, _config = _open(src, dst)
    selection = _selection(src_spec, dst_spec, opts)
    target = target_of(src_backend, dst_backend)
    collector = None
    if report is not None:
        from trackbridge.report import ReportCollector  # only when asked: check alone pays nothing

        collector = ReportCollector(target)
    checker = Checker(src_backend.reader(), dst_backend.reader(), target,
                      download=not no_download, workers=opts["transfers"], collector=collector)
    _settle_heap()
    with vendor_output_to_stderr():
        try:
            result = checker.check(selection)
        finally:
            checker.src.close()
            checker.dst.close()
        if not (result.findings or opts["allow_empty"]):
            require_runs(src_spec, src_backend, selection.experiments)
    _print_check(result, opts["as_json"])
    if report is not None and collector is not None:
        from trackbridge.report import write_check_report

        write_check_report(report, result, collector, source=_described(src_spec, src_backend),
                           destination=_described(dst_spec, dst_backend))
        err_console.print(f"report: {report}", markup=False, highlight=False)
    raise SystemExit(0 if result.ok else 1)


def _require_dir(arg: str, which: str) -> None:
    if not arg.startswith("dir:"):
        raise click.BadParameter(f"must be a dir:PATH archive, got {arg!r}", param_hint=which)


@click.command("export")
@click.argument("src")
@click.argument("dst", metavar="dir:PATH")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@selection_options
@_guard
def export_(src: str, dst: str, dry_run: bool, **opts: Any) -> None:
    """Copy runs from SRC into the vendor-neutral archive dir:PATH (same as 'copy')."""
    _require_dir(dst, "DST")
    _transfer("copy", src, dst, dry_run=dry_run, delete=False, max_delete=0, exact_points=False, opts=opts)


@click.command("import")
@click.argument("src", metavar="dir:PATH")
@click.argument("dst")
@click.option("--dry-run", is_flag=True, help="Print the plan; write nothing.")
@selection_options
@_guard
def import_(src: str, dst: str, dry_run: bool, **opts: Any) -> None:
    """Copy runs from the archive dir:PATH into DST (same as 'copy')."""
    _require_dir(src, "SRC")
    _transfer("copy", src, dst, dry_run=dry_run, delete=False, max_delete=0, exact_points=False, opts=opts)


for _command in (copy, sync, check, export_, import_):
    _command.help = (_command.help or "") + "\n\n" + REMOTES_HELP

COMMANDS = [plan, copy, sync, check, export_, import_]
