"""How fast trackbridge reads a ``.wandb`` file, against a bare scan of the same file.

One command, not a test::

    .venv/bin/python benchmarks/wandb_read.py [--rows 1000000] [--keys 5] [--small] [--keep DIR]

1. The real wandb SDK (offline mode, its own process) logs ``--rows`` rows of ``--keys``
   keys (``run.log`` per row), making the file; reused from ``--keep DIR`` if there.
2. Each read runs in its own process (peak RSS is that process's ``ru_maxrss``), in
   this order, each twice, the faster kept:

   a. bare scan: chunks + CRC + ``wandb_internal_pb2.Record`` parse of every record
      (the least any Python reader of the format must do);
   b. trackbridge full read to the canonical model: ``get_run`` (one pass: config,
      summary, tags, metric summaries) + ``iter_rows`` over every key (``Row``\\ s with
      step, timestamp ms and float values);
   c. trackbridge per-key read: ``iter_metric_history`` of every key (one pass split
      into per-key spill files, then each key's pages).

Targets: b / a <= 4, peak RSS of b and c < 300 MB.  ``--small`` = 20,000 rows (smoke).
Prints a table and writes ``benchmarks/results/wandb_read-<date>.json``.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from _results import save, show  # noqa: E402

MAKE = textwrap.dedent("""
    import os, sys, time
    import wandb
    rows, keys, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    run = wandb.init(project="bench", dir=out, config={"rows": rows})
    names = [f"m{k}" for k in range(keys)]
    t = time.perf_counter()
    for i in range(rows):
        run.log({n: i * 0.001 + k for k, n in enumerate(names)})
    run.finish()
    print(time.perf_counter() - t)
""")

BARE = textwrap.dedent("""
    import sys, time
    from wandb.proto import wandb_internal_pb2 as pb
    from trackbridge.backends.wandb import txlog
    t = time.perf_counter()
    records = history = 0
    for _offset, data in txlog.read_file(sys.argv[1]):
        record = pb.Record()
        record.ParseFromString(data)
        records += 1
        history += record.HasField("history")
    print(time.perf_counter() - t, records, history)
""")

FULL = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import wandb.proto.wandb_internal_pb2  # imported before the clock, as in the bare scan
    from trackbridge.backends.wandb.offline_reader import WandbOfflineReader
    t = time.perf_counter()
    reader = WandbOfflineReader(Path(sys.argv[1]))
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    rows = points = 0
    for row in reader.iter_rows(run.run_id, sorted(run.metrics)):
        rows += 1
        points += len(row.values)
    print(time.perf_counter() - t, rows, points)
""")

PER_KEY = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import wandb.proto.wandb_internal_pb2  # imported before the clock, as in the bare scan
    from trackbridge.backends.wandb.offline_reader import WandbOfflineReader
    t = time.perf_counter()
    reader = WandbOfflineReader(Path(sys.argv[1]))
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    points = 0
    for key in sorted(run.metrics):
        for page in reader.iter_metric_history(run.run_id, key):
            points += len(page)
    reader.close()
    print(time.perf_counter() - t, points)
""")


def run_child(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[list[str], float]:
    """Run ``code`` in a fresh interpreter; return its printed fields and peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"child failed ({proc.returncode}):\n{err[-3000:]}")
    return out.strip().splitlines()[-1].split(), usage.ru_maxrss / 1024


def make_file(rows: int, keys: int, work: Path) -> tuple[Path, float]:
    found = sorted(work.glob("wandb/offline-run-*/run-*.wandb"))
    if found:
        return found[-1], float("nan")
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true",
           "WANDB_DIR": str(work), "WANDB_DATA_DIR": str(work / "data"), "WANDB_CACHE_DIR": str(work / "cache"),
           "WANDB_CONFIG_DIR": str(work / "config"), "DO_NOT_TRACK": "1"}
    fields, _ = run_child(MAKE, str(rows), str(keys), str(work), env=env)
    (path,) = sorted(work.glob("wandb/offline-run-*/run-*.wandb"))
    return path, float(fields[0])


def best(code: str, *args: str) -> tuple[list[str], float]:
    first, rss1 = run_child(code, *args)
    second, rss2 = run_child(code, *args)
    return (first if float(first[0]) <= float(second[0]) else second), max(rss1, rss2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="20,000 rows: a smoke run")
    parser.add_argument("--keep", type=Path, help="folder for the SDK's run (reused when it is there)")
    args = parser.parse_args()
    rows = 20_000 if args.small else args.rows
    work = args.keep or Path(tempfile.mkdtemp(prefix="tb-wandb-read-"))
    try:
        path, sdk_s = make_file(rows, args.keys, work)
        size_mb = path.stat().st_size / 1e6
        (bare_s, records, history), bare_rss = best(BARE, str(path))
        (full_s, got_rows, points), full_rss = best(FULL, str(path))
        (key_s, key_points), key_rss = best(PER_KEY, str(path))
        bare_s, full_s, key_s = float(bare_s), float(full_s), float(key_s)
        assert int(got_rows) == int(history) == rows, (got_rows, history, rows)
        assert int(points) == int(key_points) == rows * args.keys
        result = {
            "rows": rows, "keys": args.keys, "file_mb": round(size_mb, 1), "records": int(records),
            "sdk_write_s": round(sdk_s, 2), "sdk_points_per_s": round(rows * args.keys / sdk_s) if sdk_s == sdk_s else None,
            "bare_scan_s": round(bare_s, 3), "bare_rows_per_s": round(rows / bare_s), "bare_rss_mb": round(bare_rss, 1),
            "full_read_s": round(full_s, 3), "full_rows_per_s": round(rows / full_s), "full_rss_mb": round(full_rss, 1),
            "per_key_read_s": round(key_s, 3), "per_key_points_per_s": round(rows * args.keys / key_s),
            "per_key_rss_mb": round(key_rss, 1),
            "full_over_bare": round(full_s / bare_s, 2), "per_key_over_bare": round(key_s / bare_s, 2),
        }
        result["targets"] = {"full_over_bare<=4": result["full_over_bare"] <= 4,
                             "rss<300MB": max(full_rss, key_rss) < 300}
        show(result)
        save("wandb_read", result, args.small)
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
