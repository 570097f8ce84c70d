"""Writing a Comet offline archive: trackbridge's archive writer vs comet_ml's own
offline ``log_metric``, on the same points (target: trackbridge >= 5x the SDK's rate).

    .venv/bin/python benchmarks/comet_write.py            # 500,000 points (5 keys x 100,000 steps)
    .venv/bin/python benchmarks/comet_write.py --small    # smoke: 20,000 points
    .venv/bin/python benchmarks/comet_write.py --steps 200000 --keys 5 [--out FILE]

Each side runs in its own child process (interpreter start-up excluded: the timed
section is from the first call to the archive on disk), no network (the SDK offline,
``log_env_details=False``, error reporting off):

* ``sdk``: ``comet_ml.start(online=False)`` + ``log_metric(key, value, step=...)`` per
  point + ``end()`` (which writes the zip).  The SDK stamps each point with the time
  of the call; trackbridge keeps the source's.
* ``trackbridge``: ``CometOfflineWriter`` ``create_run`` + ``log_rows`` in rows of
  ``keys`` values, 10,000 rows per call (what the sync engine sends) + ``finish_run``
  (which writes the zip).

Both archives are read back with trackbridge's reader and the point counts checked,
so a fast writer that drops points cannot win.  Prints a table and the ratio; writes a
JSON to ``benchmarks/results/comet_write-<date>.json`` (or ``--out``).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
from _results import save  # noqa: E402

_SDK = r'''
import json, os, sys, time
os.environ["COMET_ERROR_TRACKING_ENABLE"] = "false"
os.environ["COMET_DISABLE_AUTO_LOGGING"] = "1"
import comet_ml
from comet_ml import ExperimentConfig
out, steps, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [f"m{k}" for k in range(keys)]
t0 = time.perf_counter()
exp = comet_ml.start(online=False, project_name="bench", experiment_config=ExperimentConfig(
    offline_directory=out, log_env_details=False, log_code=False, log_git_metadata=False,
    log_git_patch=False, auto_output_logging=False, display_summary_level=0))
for step in range(steps):
    for name in names:
        exp.log_metric(name, step * 0.001, step=step)
exp.end()
print(json.dumps({"seconds": time.perf_counter() - t0}))
'''

_TB = r'''
import json, sys, time
from pathlib import Path
from trackbridge.backends.comet.offline_writer import CometOfflineWriter
from trackbridge.history import Row
from trackbridge.model import RunStatus
out, steps, keys = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
names = [f"m{k}" for k in range(keys)]
t0 = time.perf_counter()
w = CometOfflineWriter(Path(out))
run = w.create_run("bench", name="bench", start_time=1_700_000_000_000)
for start in range(0, steps, 10_000):
    w.log_rows(run, [Row(s, 1_700_000_000_000 + s, {n: s * 0.001 for n in names})
                     for s in range(start, min(steps, start + 10_000))])
w.finish_run(run, RunStatus.FINISHED, 1_700_000_000_000 + steps)
w.close()
print(json.dumps({"seconds": time.perf_counter() - t0}))
'''


def _run(code: str, out: Path, steps: int, keys: int, home: Path) -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    env.update({"HOME": str(home), "COMET_ERROR_TRACKING_ENABLE": "false", "PYTHONPATH": str(ROOT / "src")})
    done = subprocess.run([sys.executable, "-c", code, str(out), str(steps), str(keys)], env=env,
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise SystemExit(f"child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def _count(folder: Path) -> int:
    from trackbridge.backends.comet.offline_reader import CometOfflineReader

    reader = CometOfflineReader(folder)
    [run] = list(reader.list_runs("bench"))
    return sum(len(page) for key in run.metrics if key != "epoch" for page in reader.iter_metric_history(run.run_id, key))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="smoke size: 4,000 steps x 5 keys")
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--keys", type=int, default=5)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    steps = 4_000 if args.small else args.steps
    points = steps * args.keys
    with tempfile.TemporaryDirectory(prefix="comet-bench-") as tmp:
        base = Path(tmp)
        sdk_s = _run(_SDK, base / "sdk", steps, args.keys, base / "home")
        tb_s = _run(_TB, base / "tb", steps, args.keys, base / "home")
        sdk_n, tb_n = _count(base / "sdk"), _count(base / "tb")
        sizes = {name: sum(p.stat().st_size for p in (base / name).glob("*.zip")) for name in ("sdk", "tb")}
    if sdk_n != points or tb_n != points:
        raise SystemExit(f"point counts differ from {points}: sdk {sdk_n}, trackbridge {tb_n}")
    result = {
        "points": points, "steps": steps, "keys": args.keys, "small": args.small,
        "sdk_s": round(sdk_s, 3), "trackbridge_s": round(tb_s, 3),
        "sdk_points_per_s": round(points / sdk_s), "trackbridge_points_per_s": round(points / tb_s),
        "ratio": round(sdk_s / tb_s, 2), "target_ratio": 5.0,
        "archive_bytes": {"sdk": sizes["sdk"], "trackbridge": sizes["tb"]},
    }
    print(f"{'writer':<14}{'seconds':>10}{'points/s':>12}")
    print(f"{'comet_ml':<14}{sdk_s:>10.2f}{points / sdk_s:>12,.0f}")
    print(f"{'trackbridge':<14}{tb_s:>10.2f}{points / tb_s:>12,.0f}")
    verdict = "PASS" if result["ratio"] >= 5 else "below target"
    print(f"ratio trackbridge/comet_ml: {result['ratio']}x (target >= 5x: {verdict}); {points:,} points each, "
          "every point read back")
    if args.small and args.out is None:
        return  # smoke runs leave no result file
    save("comet_write", result, out=args.out)


if __name__ == "__main__":
    main()
