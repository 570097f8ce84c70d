"""How fast trackbridge writes W&B offline runs, against the wandb SDK's own ``run.log``.

One command, not a test::

    .venv/bin/python benchmarks/wandb_write.py [--rows 200000] [--keys 5] [--small]

The same points (``--rows`` rows of ``--keys`` keys, steps 0..N-1, one timestamp per
row) are written, each in its own process, twice, the faster kept:

  a. the wandb SDK, offline: ``run.log({...})`` per row, ``init`` to ``finish``;
  b. trackbridge's ``wandb-offline`` writer: ``log_rows`` in batches of 1,000 rows,
     ``create_run`` to ``close`` (the Exit record written).

Both files are then read back with trackbridge's reader (every point checked), and
the writer's file is parsed with wandb's protobuf ``Record``.  Target: b >= 3 x a in
points per second.  ``--small`` = 20,000 rows (smoke).  The MLflow -> wandb-offline
copy of the sync corpus is measured by ``benchmarks/sync_mlflow.py``'s machinery
(not repeated here).  Prints a table and writes ``benchmarks/results/wandb_write-<date>.json``.
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

SDK = textwrap.dedent("""
    import sys, time
    import wandb
    rows, keys, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    names = [f"m{k}" for k in range(keys)]
    t = time.perf_counter()
    run = wandb.init(project="bench", dir=out)
    for i in range(rows):
        run.log({n: i * 0.001 + k for k, n in enumerate(names)})
    run.finish()
    print(time.perf_counter() - t)
""")

OURS = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    import wandb.proto.wandb_internal_pb2  # imported before the clock, as the SDK is
    from trackbridge.backends.wandb.offline_writer import WandbOfflineWriter
    from trackbridge.history import Row
    from trackbridge.model import RunStatus
    rows, keys, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
    names = [f"m{k}" for k in range(keys)]
    t0 = 1_700_000_000_000
    t = time.perf_counter()
    w = WandbOfflineWriter(Path(out))
    run_id = w.create_run("bench", start_time=t0, tags={"trackbridge.source.platform": "bench",
                                                        "trackbridge.source.run_id": "1"})
    for start in range(0, rows, 1000):
        w.log_rows(run_id, [Row(i, t0 + i, {n: i * 0.001 + k for k, n in enumerate(names)})
                            for i in range(start, min(rows, start + 1000))])
    w.finish_run(run_id, RunStatus.FINISHED, t0 + rows)
    w.close()
    print(time.perf_counter() - t)
""")

CHECK = textwrap.dedent("""
    import sys
    from pathlib import Path
    from trackbridge.backends.wandb.offline_reader import WandbOfflineReader
    rows, keys = int(sys.argv[2]), int(sys.argv[3])
    reader = WandbOfflineReader(Path(sys.argv[1]))
    (run,) = [r for e in reader.list_experiments() for r in reader.list_runs(e.name)]
    got = 0
    for row in reader.iter_rows(run.run_id, sorted(run.metrics)):
        for k in range(keys):
            assert row.values[f"m{k}"] == row.step * 0.001 + k, row
        got += 1
    assert got == rows, (got, rows)
    print(got)
""")


def child(code: str, *args: str, env: dict[str, str]) -> str:
    done = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, cwd=ROOT)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return done.stdout.strip().splitlines()[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--small", action="store_true", help="20,000 rows: a smoke run")
    args = parser.parse_args()
    rows = 20_000 if args.small else args.rows
    work = Path(tempfile.mkdtemp(prefix="tb-wandb-write-"))
    env = {**os.environ, "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true",
           "WANDB_DATA_DIR": str(work / "data"), "WANDB_CACHE_DIR": str(work / "cache"),
           "WANDB_CONFIG_DIR": str(work / "config"), "DO_NOT_TRACK": "1"}
    try:
        times = {"sdk": [], "ours": []}
        for attempt in range(2):
            for name, code in (("sdk", SDK), ("ours", OURS)):
                out = work / f"{name}-{attempt}"
                out.mkdir()
                times[name].append(float(child(code, str(rows), str(args.keys), str(out), env=env)))
        sdk_file = next((work / "sdk-0" / "wandb").glob("offline-run-*"))
        ours_dir = work / "ours-0"
        for path in (sdk_file, ours_dir):
            assert int(child(CHECK, str(path), str(rows), str(args.keys), env=env)) == rows
        points = rows * args.keys
        sdk_s, ours_s = min(times["sdk"]), min(times["ours"])
        result = {
            "rows": rows, "keys": args.keys, "points": points,
            "sdk_s": round(sdk_s, 3), "sdk_points_per_s": round(points / sdk_s),
            "ours_s": round(ours_s, 3), "ours_points_per_s": round(points / ours_s),
            "ours_over_sdk_rate": round(sdk_s / ours_s, 2),
        }
        result["targets"] = {"ours>=3x_sdk": result["ours_over_sdk_rate"] >= 3}
        show(result)
        save("wandb_write", result, args.small)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
