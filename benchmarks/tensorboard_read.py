"""How fast trackbridge reads TensorBoard event files, against a bare record loop over the
same file.

One command, not a test::

    .venv/bin/python benchmarks/tensorboard_read.py [--points 1000000] [--keys 2] [--small] [--keep DIR]

1. The real tensorboardX ``SummaryWriter`` (its own process) logs ``--points`` scalar points
   spread over ``--keys`` tags (``add_scalar`` per point), making one event file; reused
   from ``--keep DIR`` if there.
2. Each read runs in its own process (peak RSS is that process's ``ru_maxrss``), each
   twice, the faster kept:

   a. bare loop: the TFRecord framing (length, skip the checksums) + ``Event`` parse of
      every record + its ``simple_value`` (the least any Python reader of the format does);
   b. trackbridge: ``list_runs`` (the run's scan: keys, last points, media) and then
      ``iter_metric_history`` of every key (``MetricPoint``\\ s with step, value, wall time ms).

Target: b / a <= 4.  ``--small`` = 20,000 points (smoke).
Prints a table and writes ``benchmarks/results/tensorboard_read-<date>.json``.
"""
from __future__ import annotations

import argparse
import math
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
    import sys, time
    from tensorboardX import SummaryWriter
    points, keys, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    names = [f"m{k}" for k in range(keys)]
    t = time.perf_counter()
    with SummaryWriter(logdir=out + "/run", flush_secs=3600, max_queue=100000) as writer:
        for i in range(points):
            writer.add_scalar(names[i % keys], i * 0.001, i // keys, walltime=1.7e9 + i / 1000)
    print(time.perf_counter() - t)
""")

BARE = textwrap.dedent("""
    import mmap, struct, sys, time
    from tensorboardX.proto.event_pb2 import Event
    t = time.perf_counter()
    records = values = 0
    unpack = struct.Struct("<Q").unpack_from
    with open(sys.argv[1], "rb") as handle, mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as view:
        pos, size = 0, len(view)
        while pos + 12 <= size:
            (length,) = unpack(view, pos)
            event = Event.FromString(view[pos + 12:pos + 12 + length])
            pos += 16 + length
            records += 1
            for value in event.summary.value:
                values += value.simple_value == value.simple_value or 1
    print(time.perf_counter() - t, records, values)
""")

FULL = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import tensorboardX.proto.event_pb2  # imported before the clock, as in the bare loop
    from trackbridge.backends.tensorboard.reader import TensorboardReader
    t = time.perf_counter()
    reader = TensorboardReader(Path(sys.argv[1]), "tensorboard")
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    points = 0
    for key in sorted(run.metrics):
        for page in reader.iter_metric_history(run.run_id, key):
            points += len(page)
    print(time.perf_counter() - t, points)
""")


def run_child(code: str, *args: str) -> tuple[list[str], float]:
    """Run ``code`` in a fresh interpreter; return its printed fields and peak RSS (MB)."""
    proc = subprocess.Popen([sys.executable, "-c", code, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=ROOT)
    _pid, status, usage = os.wait4(proc.pid, 0)
    out = proc.stdout.read() if proc.stdout else ""
    err = proc.stderr.read() if proc.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"child failed:\n{err[-3000:]}")
    return out.strip().splitlines()[-1].split(), usage.ru_maxrss / 1024


def make_file(points: int, keys: int, work: Path) -> tuple[Path, float]:
    found = sorted(work.glob("run/*tfevents*"))
    if found:
        return found[-1], float("nan")
    work.mkdir(parents=True, exist_ok=True)
    fields, _ = run_child(MAKE, str(points), str(keys), str(work))
    (path,) = sorted(work.glob("run/*tfevents*"))
    return path, float(fields[0])


def best(code: str, *args: str) -> tuple[list[str], float]:
    """The faster of two runs (first field: seconds), with its peak RSS."""
    runs = [run_child(code, *args) for _ in range(2)]
    return min(runs, key=lambda r: float(r[0][0]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--keys", type=int, default=2)
    parser.add_argument("--small", action="store_true", help="20,000 points: a smoke run")
    parser.add_argument("--keep", type=Path, help="make the file here once and reuse it")
    args = parser.parse_args()
    points = 20_000 if args.small else args.points
    work = args.keep or Path(tempfile.mkdtemp(prefix="tb-bench-"))
    try:
        path, write_s = make_file(points, args.keys, work)
        bare, bare_rss = best(BARE, str(path))
        full, full_rss = best(FULL, str(work))
        if int(full[1]) != points:
            raise SystemExit(f"trackbridge read {full[1]} points, not {points}")
        result = {
            "points": points, "keys": args.keys, "file_mb": round(path.stat().st_size / 1e6, 1),
            "tensorboardX_write_s": None if math.isnan(write_s) else round(write_s, 2),  # NaN: --keep reused it
            "bare_loop_s": round(float(bare[0]), 3), "bare_records": int(bare[1]),
            "trackbridge_s": round(float(full[0]), 3),
            "trackbridge_points_per_s": round(points / float(full[0])),
            "ratio": round(float(full[0]) / float(bare[0]), 2), "target_ratio": 4,
            "bare_rss_mb": round(bare_rss), "trackbridge_rss_mb": round(full_rss),
        }
        show(result)
        save("tensorboard_read", result, small=args.small)
        if result["ratio"] > 4:
            raise SystemExit(f"ratio {result['ratio']} > 4")
    finally:
        if args.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
