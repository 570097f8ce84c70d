"""How fast trackbridge reads a neptune-exporter run, against a plain pyarrow scan of the
same parquet file.

One command, not a test::

    .venv/bin/python benchmarks/neptune_export_read.py [--points 1000000] [--keys 2] [--small] [--keep DIR]

1. ``--points`` ``float_series`` rows over ``--keys`` attributes are written as one run in
   neptune-exporter's schema and file protocol (``tests/neptune_export_helpers.py``:
   its ``SCHEMA``, Snappy, ``.tmp`` renamed); reused from ``--keep DIR`` if there.
2. Each read runs in its own process, twice, the faster kept:

   a. plain scan: ``pyarrow.parquet.read_table`` of step, timestamp and value, steps and
      times cast to integers by pyarrow, the three columns to Python lists;
   b. trackbridge: ``list_runs`` (the run's scan) then ``iter_metric_history`` of every key
      (``MetricPoint``\\ s).

Target: b / a <= 4.  ``--small`` = 20,000 points.  Writes
``benchmarks/results/neptune_export_read-<date>.json``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import textwrap
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
from _results import save, show  # noqa: E402
from tensorboard_read import best  # noqa: E402  (the same child-process timing)

MAKE = textwrap.dedent("""
    import sys
    sys.path.insert(0, "tests")
    from pathlib import Path
    from neptune_export_helpers import row, write_run
    points, keys, out = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
    rows = [row("sys/name", "string", "bench")]
    rows += [row(f"m{i % keys}", "float_series", i * 0.001, step=i // keys, ms=1_700_000_000_000 + i)
             for i in range(points)]
    write_run(out / "data", "ws/bench", "BENCH-1", rows)
    print(0)
""")

BARE = textwrap.dedent("""
    import sys, time
    import pyarrow as pa, pyarrow.compute as pc, pyarrow.parquet as pq
    from pathlib import Path
    (part,) = Path(sys.argv[1]).glob("data/*/*_part_0.parquet")
    t = time.perf_counter()
    table = pq.read_table(part, columns=["attribute_path", "step", "timestamp", "float_value"])
    paths = table["attribute_path"].to_pylist()
    steps = pc.cast(table["step"], pa.int64()).to_pylist()
    stamps = pc.cast(table["timestamp"], pa.int64()).to_pylist()
    values = table["float_value"].to_pylist()
    print(time.perf_counter() - t, sum(v is not None for v in values))
""")

FULL = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import pyarrow.parquet  # imported before the clock, as in the plain scan
    from trackbridge.backends.neptune_export.reader import NeptuneExportReader
    t = time.perf_counter()
    reader = NeptuneExportReader(Path(sys.argv[1]), "neptune-export")
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    points = 0
    for key in sorted(run.metrics):
        for page in reader.iter_metric_history(run.run_id, key):
            points += len(page)
    print(time.perf_counter() - t, points)
""")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="20,000 points: a smoke run")
    parser.add_argument("--keep", type=Path, help="make the file here once and reuse it")
    args = parser.parse_args()
    points = 20_000 if args.small else args.points
    work = args.keep or Path(tempfile.mkdtemp(prefix="neptune-bench-"))
    try:
        if not any(work.glob("data/*/*_part_0.parquet")):
            work.mkdir(parents=True, exist_ok=True)
            from tensorboard_read import run_child

            run_child(MAKE, str(points), str(args.keys), str(work))
        bare, _ = best(BARE, str(work))
        full, full_rss = best(FULL, str(work))
        if int(full[1]) != points:
            raise SystemExit(f"trackbridge read {full[1]} points, not {points}")
        result = {"points": points, "keys": args.keys, "plain_scan_s": round(float(bare[0]), 3),
                  "trackbridge_s": round(float(full[0]), 3),
                  "trackbridge_points_per_s": round(points / float(full[0])),
                  "ratio": round(float(full[0]) / float(bare[0]), 2), "target_ratio": 4,
                  "trackbridge_rss_mb": round(full_rss)}
        show(result)
        save("neptune_export_read", result, small=args.small)
        if result["ratio"] > 4:
            raise SystemExit(f"ratio {result['ratio']} > 4")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    main()
