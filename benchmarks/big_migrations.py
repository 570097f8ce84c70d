"""Big migrations (issue 16): the MLflow store at its real speed, flat cost per run and per key.

One command, not a test::

    .venv/bin/python benchmarks/big_migrations.py [--small] [--keep DIR] [--only PART,...]

Every copy runs as ``trackbridge`` in its own process (wall time, peak RSS of the tree),
side by side in this one run:

1. ``wandb``: the real wandb SDK (offline) logs 20 runs x 50,000 rows x 4 keys (4,000,000
   points; reused from ``--keep``), then ``copy`` -> ``dir:`` and ``copy`` -> an embedded
   MLflow store (``sqlite:``, the bulk path).  Targets: sqlite >= 60,000 points/s and
   within 1.5x of ``dir:``; peak RSS <= 300 MB over MLflow's own import.
2. ``postgres``: the distribution's PostgreSQL (tests/servers.py): ``copy`` of the same
   source into an ``mlflow server`` on PostgreSQL (REST), against that server's
   ``log_batch`` ceiling (bare MlflowClient, 4 threads, the same points), and into the
   same kind of database given as a URI (the bulk path).
3. ``tiny``: copy time per run at 100 / 1,000 / 10,000 tiny runs (5 params, 2 tags,
   3 metrics x 10 points) from an archive into ``dir:`` and ``wandb-offline:``, also
   after the start (minus the wall time of copying one run).  Target: <= 10 ms per
   run, flat.
4. ``keys``: copy + check of one run with 1,000 and 10,000 keys (10 points each), from
   an embedded MLflow store into ``dir:`` and from ``dir:`` into ``dir:``: time linear in
   the points.

``--small``: a smoke run (1/100 of every size).  Prints a table and writes
``benchmarks/results/big_migrations-<date>[-small].json``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "tests")]
from _measure import run  # noqa: E402
from _results import save, show  # noqa: E402

TRACKBRIDGE = str(Path(sys.executable).with_name("trackbridge"))
PYTHON = sys.executable

MAKE_WANDB = textwrap.dedent("""
    import sys, wandb
    runs, rows, keys, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    names = [f"m{k}" for k in range(keys)]
    for r in range(runs):
        run = wandb.init(project="big", dir=out, name=f"run-{r}", config={"r": r}, reinit="finish_previous")
        for i in range(rows):
            run.log({n: i * 0.001 + k for k, n in enumerate(names)})
        run.finish()
""")

MAKE_ARCHIVE = textwrap.dedent("""
    import sys
    from trackbridge.backends import get_backend
    from trackbridge.model import MetricPoint, RunStatus
    kind, runs, keys, points, out = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    backend = get_backend("dir", {"path": out}) if kind == "dir" else get_backend("mlflow", {"tracking_uri": out})
    w = backend.writer()
    e = w.ensure_experiment("big")
    for n in range(runs):
        r = w.create_run(e, name=f"r{n}", start_time=1_700_000_000_000 + n, tags={"a": "1", "b": "2"})
        if keys <= 3:
            w.log_params(r, {f"p{i}": i for i in range(5)})
        w.log_metrics(r, [(f"m{k}", MetricPoint(i, float(i), 1_700_000_000_000 + i))
                          for k in range(keys) for i in range(points)])
        w.finish_run(r, RunStatus.FINISHED, 1_700_000_100_000 + n)
    w.close()
""")

CEILING = textwrap.dedent("""
    import sys, time
    from concurrent.futures import ThreadPoolExecutor
    from mlflow import MlflowClient
    from mlflow.entities import Metric
    uri, runs, rows, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    client = MlflowClient(uri)
    exp = client.create_experiment(f"ceiling-{time.time()}")
    def one(r):
        run = client.create_run(exp).info.run_id
        batch = []
        for i in range(rows):
            for k in range(keys):
                batch.append(Metric(f"m{k}", i * 0.001 + k, 1_700_000_000_000 + i, i))
                if len(batch) == 1000:
                    client.log_batch(run, metrics=batch, synchronous=True); batch = []
        if batch:
            client.log_batch(run, metrics=batch, synchronous=True)
    t = time.perf_counter()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(runs)))
    print(time.perf_counter() - t)
""")

MLFLOW_IMPORT = "import mlflow, mlflow.store.tracking.sqlalchemy_store"


def child(code: str, *args: str, log: Path, env: dict[str, str] | None = None) -> dict[str, Any]:
    result = run([PYTHON, "-c", code, *args], log=log, env=env, cwd=ROOT, timeout=7200)
    if result["rc"] != 0:
        raise SystemExit(f"{log.name} failed:\n{result['stderr_tail']}")
    return result


def copy(src: str, dst: str, log: Path, *extra: str, check: bool = False) -> dict[str, Any]:
    """``trackbridge copy`` (then ``check`` when asked) in its own process.  The disk's
    dirty pages are written out first, so a copy does not pay for flushing what came before
    it (a source just made: the wandb SDK writes 366 MB for 4M points; the previous copy's
    ~0.9 GB store).  Without it, sqlite/dir was 1.67x right after the source was made and
    1.28-1.51x on a kept source; with it, 1.46x on a fresh one (one run)."""
    os.sync()
    env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true", "WANDB_SILENT": "true"}
    result = run([TRACKBRIDGE, "copy", src, dst, "--json", *extra], log=log, env=env, cwd=ROOT, timeout=7200)
    if result["rc"] != 0:
        raise SystemExit(f"{log.name} failed:\n{result['stderr_tail']}")
    stats = json.loads(result["stdout"])["stats"]
    out = {"wall_s": result["wall_s"], "points": stats["points"], "runs": stats["runs_created"],
           "points_per_s": round(stats["points"] / result["wall_s"]) if result["wall_s"] else 0,
           "peak_mb": result["tree_peak_mb"]}
    if check:
        checked = run([TRACKBRIDGE, "check", src, dst], log=log.with_name(log.name + "-check"), env=env, cwd=ROOT,
                      timeout=7200)
        out["check_s"] = checked["wall_s"]
        out["check_ok"] = checked["rc"] == 0
    return out


def part_wandb(work: Path, scale: int, result: dict[str, Any]) -> Path:
    runs, rows, keys = 20, 50_000 // scale, 4
    source = work / "wandb-source"
    if not list(source.glob("wandb/offline-run-*")):
        env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true",
               "WANDB_DIR": str(source), "WANDB_DATA_DIR": str(source / "data"),
               "WANDB_CACHE_DIR": str(source / "cache"), "WANDB_CONFIG_DIR": str(source / "config"),
               "DO_NOT_TRACK": "1"}
        source.mkdir(parents=True, exist_ok=True)
        made = child(MAKE_WANDB, str(runs), str(rows), str(keys), str(source), log=work / "make-wandb.log", env=env)
        result["wandb_sdk_write_s"] = made["wall_s"]
    src = f"wandb-offline:{source / 'wandb'}"
    for folder in ("to-dir", "to-sqlite"):
        shutil.rmtree(work / folder, ignore_errors=True)
    to_dir = copy(src, f"dir:{work / 'to-dir'}", work / "wandb-to-dir.log")
    (work / "to-sqlite").mkdir()
    to_sqlite = copy(src, _quote(f"sqlite:///{work / 'to-sqlite' / 'mlflow.db'}"), work / "wandb-to-sqlite.log")
    baseline = child(MLFLOW_IMPORT, log=work / "mlflow-import.log")["tree_peak_mb"]
    result.update({
        "wandb_points": to_dir["points"],
        "wandb_to_dir_s": to_dir["wall_s"], "wandb_to_dir_points_per_s": to_dir["points_per_s"],
        "wandb_to_sqlite_s": to_sqlite["wall_s"], "wandb_to_sqlite_points_per_s": to_sqlite["points_per_s"],
        "sqlite_vs_dir (target <= 1.5)": round(to_sqlite["wall_s"] / to_dir["wall_s"], 2),
        "sqlite_peak_mb": to_sqlite["peak_mb"], "mlflow_import_mb": baseline,
        "sqlite_peak_over_mlflow_import_mb (target <= 300)": round(to_sqlite["peak_mb"] - baseline, 1),
    })
    return source


_REMOTES: dict[str, str] = {}


def _quote(uri: str) -> str:
    """An MLflow tracking URI as a named remote, through the environment (the children inherit it)."""
    name = _REMOTES.setdefault(uri, f"BENCH{len(_REMOTES)}")
    os.environ[f"TRACKBRIDGE_REMOTE_{name}_BACKEND"] = "mlflow"
    os.environ[f"TRACKBRIDGE_REMOTE_{name}_TRACKING_URI"] = uri
    return name.lower()


def part_postgres(work: Path, source: Path, scale: int, result: dict[str, Any]) -> None:
    from servers import MlflowServer, Postgres

    postgres = Postgres().start()
    server = MlflowServer(work / "pg-server", backend_uri=postgres.uri("server"), workers=2).start()
    try:
        src = f"wandb-offline:{source / 'wandb'}"
        rest = copy(src, _quote(server.url), work / "wandb-to-pg-server.log")
        ceiling = child(CEILING, server.url, "20", str(50_000 // scale), "4", log=work / "pg-ceiling.log")
        ceiling_s = float(ceiling["stdout"].split()[-1])
        direct = copy(src, _quote(postgres.uri("direct")), work / "wandb-to-pg-uri.log")
        result.update({
            "pg_server_copy_s": rest["wall_s"], "pg_server_points_per_s": rest["points_per_s"],
            "pg_server_log_batch_ceiling_s": round(ceiling_s, 2),
            "pg_server_copy_vs_ceiling": round(rest["wall_s"] / ceiling_s, 2),
            "pg_uri_bulk_copy_s": direct["wall_s"], "pg_uri_bulk_points_per_s": direct["points_per_s"],
        })
    finally:
        server.stop()
        postgres.stop()


def part_tiny(work: Path, scale: int, result: dict[str, Any]) -> None:
    """Wall time per run, and per run after the start (the wall time of copying one run:
    interpreter, imports, plan), which is what a bigger workspace multiplies."""
    sizes = [1] + [max(10, count // scale) for count in (100, 1_000, 10_000)]
    start: dict[str, float] = {}
    for n in sizes:
        src = work / f"tiny-{n}"
        if not (src / "archive.json").exists():
            child(MAKE_ARCHIVE, "dir", str(n), "3", "10", str(src), log=work / f"make-tiny-{n}.log")
        for kind, dst in (("dir", f"dir:{work / f'tiny-{n}-out'}"), ("wandb-offline", f"wandb-offline:{work / f'tiny-{n}-w'}")):
            shutil.rmtree(dst.split(":", 1)[1], ignore_errors=True)
            done = copy(f"dir:{src}", dst, work / f"tiny-{n}-{kind}.log")
            if n == 1:
                start[kind] = done["wall_s"]
                result[f"tiny_start_to_{kind}_s"] = done["wall_s"]
                continue
            result[f"tiny_{n}_runs_to_{kind}_ms_per_run"] = round(done["wall_s"] / n * 1000, 1)
            result[f"tiny_{n}_runs_to_{kind}_ms_per_run_after_start (target <= 10)"] = round(
                (done["wall_s"] - start[kind]) / (n - 1) * 1000, 1)


def part_keys(work: Path, scale: int, result: dict[str, Any]) -> None:
    for keys in (1_000, 10_000):
        k = max(100, keys // scale)
        sqlite = work / f"keys-{k}.db"
        archive = work / f"keys-{k}-src"
        if not sqlite.exists():
            child(MAKE_ARCHIVE, "mlflow", "1", str(k), "10", f"sqlite:///{sqlite}", log=work / f"make-keys-{k}.log")
        if not (archive / "archive.json").exists():
            child(MAKE_ARCHIVE, "dir", "1", str(k), "10", str(archive), log=work / f"make-keys-dir-{k}.log")
        for label, src in (("mlflow", _quote(f"sqlite:///{sqlite}")), ("dir", f"dir:{archive}")):
            out = work / f"keys-{k}-{label}-out"
            shutil.rmtree(out, ignore_errors=True)
            done = copy(src, f"dir:{out}", work / f"keys-{k}-{label}.log", check=True)
            result[f"keys_{k}_{label}_to_dir_copy_s"] = done["wall_s"]
            result[f"keys_{k}_{label}_to_dir_check_s"] = done["check_s"]
            result[f"keys_{k}_{label}_check_ok"] = done["check_ok"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="1/100 of every size: a smoke run")
    parser.add_argument("--keep", type=Path, help="work folder kept between runs (sources reused)")
    parser.add_argument("--only", default="wandb,postgres,tiny,keys", help="parts to run, comma-separated")
    args = parser.parse_args()
    scale = 100 if args.small else 1
    work = args.keep or Path(tempfile.mkdtemp(prefix="tb-big-"))
    work.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    result: dict[str, Any] = {"small": args.small, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                              "load_avg_1m_at_start": os.getloadavg()[0]}
    try:
        source = part_wandb(work, scale, result) if parts & {"wandb", "postgres"} else None
        if "postgres" in parts and source is not None:
            part_postgres(work, source, scale, result)
        if "tiny" in parts:
            part_tiny(work, scale, result)
        if "keys" in parts:
            part_keys(work, scale, result)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)
    result["load_avg_1m_at_end"] = os.getloadavg()[0]
    show(result)
    save("big_migrations", result, small=args.small)


if __name__ == "__main__":
    main()
