"""What an embedded MLflow store costs to write on its own: the floor under a copy into
``sqlite:``, with no source to read.

One command, not a test::

    .venv/bin/python benchmarks/mlflow_bulk_write.py [--points 4000000] [--small]

Why: a W&B 4M-point copy into an embedded store is 1.3-1.7x the copy into the archive
(issue 16's target 1.5x).  This separates the store's own cost from the reading: the
points of 20 runs x 4 keys go through trackbridge's bulk path (``BulkMetrics.log``, batches
of ``SQL_STORE_BATCH``) into a fresh store, once with the store as MLflow makes it and
once with ``PRAGMA synchronous=OFF`` on a scratch store (a reference only: trackbridge
never turns a user's store's fsyncs off).  Wall time against CPU time shows how much of
the write is waiting for the disk; the store's size (~0.9 GB) against the archive's (37 MB
for big_migrations' 4M W&B points) shows why.

Prints a table and writes ``benchmarks/results/mlflow_bulk_write-<date>.json``.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from _results import save, show  # noqa: E402

RUNS, KEYS = 20, ("loss", "acc", "lr", "grad_norm")

#: one measurement in a process of its own (a fresh interpreter and page cache state).
WRITE = textwrap.dedent("""
    import json, os, sys, time
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore
    from trackbridge.backends.mlflow.bulk import BulkMetrics
    from trackbridge.backends.mlflow.writer import SQL_STORE_BATCH
    from trackbridge.model import MetricPoint

    folder, points, pragma = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    keys = json.loads(sys.argv[4])
    runs_n = int(sys.argv[5])
    db = os.path.join(folder, "mlflow.db")
    store = SqlAlchemyStore(f"sqlite:///{db}", os.path.join(folder, "artifacts"))
    experiment = store.create_experiment("bulk-write")
    runs = [store.create_run(experiment, "bench", 0, [], f"run-{i}").info.run_id for i in range(runs_n)]
    bulk = BulkMetrics.open(store)
    assert bulk is not None, "the bulk path refused this store"
    if pragma:
        bulk.pragmas = (pragma,)  # on the writer process's connection
    per_series = points // (runs_n * len(keys))
    batches = []
    for run in runs:
        for key in keys:
            series = [(key, MetricPoint(i, i * 0.001, 1_700_000_000_000 + i)) for i in range(per_series)]
            batches += [(run, series[s:s + SQL_STORE_BATCH]) for s in range(0, per_series, SQL_STORE_BATCH)]
    wall, cpu = time.perf_counter(), time.process_time()
    for run, batch in batches:
        bulk.log(run, batch)
    bulk.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    stored = store.engine.connect().exec_driver_sql("SELECT count(*) FROM metrics").scalar()
    print(json.dumps({"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "points": stored,
                      "store_mb": round(os.path.getsize(db) / 2**20, 1)}))
""")


def write(points: int, pragma: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="tb-bulk-write-") as folder:
        done = subprocess.run([sys.executable, "-c", WRITE, folder, str(points), pragma, json.dumps(KEYS), str(RUNS)],
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"the write failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4_000_000, help="points in all (20 runs x 4 keys)")
    parser.add_argument("--small", action="store_true", help="40,000 points: a smoke run")
    args = parser.parse_args()
    points = 40_000 if args.small else args.points
    as_made = write(points, "")
    no_fsync = write(points, "synchronous = OFF")
    result = {
        "points": as_made["points"],
        "store_mb": as_made["store_mb"],
        "write_s": as_made["wall_s"],
        "write_cpu_s": as_made["cpu_s"],
        "write_points_per_s": round(as_made["points"] / as_made["wall_s"]),
        "waiting_for_disk_s (wall - cpu)": round(as_made["wall_s"] - as_made["cpu_s"], 2),
        "reference_synchronous_off_s": no_fsync["wall_s"],
        "reference_synchronous_off_cpu_s": no_fsync["cpu_s"],
    }
    show(result)
    save("mlflow_bulk_write", result, small=args.small)


if __name__ == "__main__":
    main()
