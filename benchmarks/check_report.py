"""What ``check --report`` costs: a 1,000-run, 4,000,000-point check with and without it.

One command, not a test (run it on a quiet machine: it streams every point three times)::

    .venv/bin/python benchmarks/check_report.py            # 1,000 runs x 4 keys x 1,000 points
    .venv/bin/python benchmarks/check_report.py --small    # smoke: 20 runs x 4 keys x 1,000 points
    .venv/bin/python benchmarks/check_report.py --runs 200 --keys 4 --points 5000 [--keep DIR] [--out FILE]

Source and destination are both ``dir:`` archives (they write and read fast, so what is
measured is ``check`` and the report, not a server).  Untimed: the sweep is written with
the archive writer; then ``trackbridge copy`` makes the destination (timed, for context)
and 1 % of its runs are damaged by hand (a param edited in ``run.json``), so the report
has differing runs to mark.  Timed, each as its own process (``_measure.run``, wall time
from spawn to exit, peak RSS):

* ``check``: ``trackbridge check SRC DST`` (exit 1: the damaged runs differ);
* ``check_report``: the same with ``--report``.

Targets (issue 19): ``check_report / check <= 2`` and the report under 20 MB.
Prints a table and writes ``benchmarks/results/check_report-<time>[-small].json``.
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _measure import run as measure  # noqa: E402
from _results import save, show  # noqa: E402

from trackbridge.backends.archive.backend import ArchiveBackend  # noqa: E402
from trackbridge.model import MetricPoint, RunStatus  # noqa: E402

T0 = 1_700_000_000_000
TRACKBRIDGE = str(ROOT / ".venv" / "bin" / "trackbridge")


def write_source(root: Path, runs: int, keys: int, points: int) -> None:
    """``runs`` runs of one experiment, each with 10 params, 3 tags and ``keys`` series of
    ``points`` points (noisy decaying curves, as training logs them)."""
    writer = ArchiveBackend({"path": str(root)}).writer()
    exp = writer.ensure_experiment("bench")
    for r in range(runs):
        run = writer.create_run(exp, name=f"trial-{r:04d}", start_time=T0 + r, user="bench",
                                tags={"sweep": "bench", "seed": str(r), "host": f"node-{r % 8}"})
        writer.log_params(run, {f"p{i}": str(r * 10 + i) for i in range(10)})
        for k in range(keys):
            writer.log_metrics(run, [(f"metric_{k}", MetricPoint(
                s, math.exp(-s / (200.0 + r + k)) + 0.01 * math.sin(s * (k + 1) + r), T0 + s * 10))
                for s in range(points)])
        writer.finish_run(run, RunStatus.FINISHED, T0 + points * 10)
    writer.close()


def damage(dst: Path, share: float = 0.01) -> int:
    """Edit a param of ``share`` of the destination's runs by hand; how many were damaged."""
    paths = sorted(dst.glob("experiments/*/runs/*/run.json"))
    damaged = paths[:: max(1, round(1 / share))]
    for path in damaged:
        data = json.loads(path.read_text(encoding="utf-8"))
        data["params"]["p0"] = "damaged"
        path.write_text(json.dumps(data), encoding="utf-8")
    return len(damaged)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="smoke size: 20 runs x 4 keys x 1,000 points")
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--keys", type=int, default=4)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--keep", type=Path, help="work folder kept (and reused) instead of a scratch one")
    parser.add_argument("--out", type=Path, help="results file (default benchmarks/results/...)")
    args = parser.parse_args()
    if args.small:
        args.runs = 20
    work = args.keep or HERE / "_work" / "check_report"
    src, dst, report = work / "src", work / "dst", work / "report.html"
    total = args.runs * args.keys * args.points
    if not (src / "archive.json").exists():
        shutil.rmtree(work, ignore_errors=True)
        print(f"writing {args.runs} runs x {args.keys} keys x {args.points} points = {total:,} points ...")
        write_source(src, args.runs, args.keys, args.points)
    shutil.rmtree(dst, ignore_errors=True)
    copy = measure([TRACKBRIDGE, "copy", f"dir:{src}", f"dir:{dst}"], log=work / "logs" / "copy.log")
    if copy["rc"] != 0:
        raise SystemExit(f"copy failed: {copy['stderr_tail']}")
    damaged = damage(dst)
    check = measure([TRACKBRIDGE, "check", f"dir:{src}", f"dir:{dst}"], log=work / "logs" / "check.log")
    report.unlink(missing_ok=True)
    with_report = measure([TRACKBRIDGE, "check", f"dir:{src}", f"dir:{dst}", "--report", str(report)],
                          log=work / "logs" / "check_report.log")
    for name, result in (("check", check), ("check --report", with_report)):
        if result["rc"] != 1:  # the damaged runs differ: anything else is a failure of the benchmark
            raise SystemExit(f"{name} exited {result['rc']}: {result['stderr_tail']}")
    size_mb = report.stat().st_size / 2**20
    ratio = with_report["wall_s"] / check["wall_s"]
    result = {
        "runs": args.runs, "keys": args.keys, "points_per_series": args.points, "points": total,
        "damaged_runs": damaged,
        "copy_s": copy["wall_s"],
        "check_s": check["wall_s"], "check_peak_mb": check["tree_peak_mb"],
        "check_report_s": with_report["wall_s"], "check_report_peak_mb": with_report["tree_peak_mb"],
        "ratio": round(ratio, 2), "ratio_target": 2.0,
        "report_mb": round(size_mb, 2), "report_mb_target": 20.0,
        "pass": ratio <= 2.0 and size_mb < 20.0,
    }
    show(result)
    save("check_report", result, small=args.small, out=args.out)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
