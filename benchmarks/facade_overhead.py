"""What the logging facade costs, against MLflow's own ways of logging to a server.

One command, not a test::

    .venv/bin/python benchmarks/facade_overhead.py [--points 100000] [--rounds 3] [--keep]

Starts one local ``mlflow server`` (``tests/servers.py``, sqlite store, one
worker) and measures, each against a fresh run:

  a. ``mlflow.log_metric`` once per point (MLflow's fluent API), 2,000 points;
  b. hand-written ``MlflowClient.log_batch`` of 1,000 points, and of N points in
     batches of 1,000 (building the ``Metric`` objects is inside the clock);
  c. ``trackbridge`` facade, N points, one ``run.log_metrics({"loss": v}, step=i)``
     per point, from ``start_run`` to the end of ``finish()`` (the final flush);
     plus how long each call blocks the caller (median, p99);
  d. wall time of ``python -c "import trackbridge"`` (median of 7 subprocesses).

(b) and (c) alternate for ``--rounds`` rounds and the medians are compared: on a
shared machine the load changes by the minute, and interleaving exposes both to
the same conditions.  Per-round figures are printed too, with the CPU time this
process (the client, not the server) spent per point: on a small machine client
and server share the cores, so client CPU is what the facade can still cut.

Targets: c >= b, c >= 50 x a, median blocking <= 10 us, import <= 0.3 s.
Prints a table and writes ``benchmarks/results/facade_overhead-<date>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests"))

from servers import MlflowServer  # noqa: E402

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")


def bench_fluent(url: str, points: int) -> float:
    """(a) points/s of ``mlflow.log_metric``, one request per point."""
    import mlflow

    mlflow.set_tracking_uri(url)
    mlflow.set_experiment("bench-fluent")
    with mlflow.start_run():
        start = time.perf_counter()
        for i in range(points):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i)
        elapsed = time.perf_counter() - start
    return points / elapsed


def bench_log_batch(url: str, points: int, batch: int = 1000) -> float:
    """(b) points/s of hand-written ``MlflowClient.log_batch`` in batches of ``batch``."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient(url)
    experiment = client.get_experiment_by_name("bench-batch")
    experiment_id = experiment.experiment_id if experiment else client.create_experiment("bench-batch")
    run_id = client.create_run(experiment_id).info.run_id
    start = time.perf_counter()
    for first in range(0, points, batch):
        now = int(time.time() * 1000)
        metrics = [Metric("loss", 1.0 / (i + 1), now, i) for i in range(first, min(first + batch, points))]
        client.log_batch(run_id, metrics=metrics)
    elapsed = time.perf_counter() - start
    client.set_terminated(run_id)
    return points / elapsed


def bench_facade(url: str, points: int) -> dict[str, float]:
    """(c) points/s of the facade including the final flush, and per-call blocking times."""
    os.environ["MLFLOW_TRACKING_URI"] = url
    import trackbridge as tb

    clock = time.perf_counter_ns
    blocked = [0] * points
    start = time.perf_counter()
    run = tb.start_run(project="bench-facade", name="facade", backend="mlflow")
    for i in range(points):
        before = clock()
        run.log_metrics({"loss": 1.0 / (i + 1)}, step=i)
        blocked[i] = clock() - before
    logged = time.perf_counter() - start
    run.finish()
    elapsed = time.perf_counter() - start
    if run.remote_ids.get("mlflow") is None:
        raise SystemExit("facade run was not created at the server: see the warnings above")
    blocked.sort()
    return {
        "rate": points / elapsed,
        "seconds": elapsed,
        "logging_loop_s": logged,
        "median_block_us": blocked[len(blocked) // 2] / 1000,
        "p99_block_us": blocked[int(len(blocked) * 0.99)] / 1000,
        "remote_run_id": run.remote_ids["mlflow"],
    }


def client_cpu_s() -> float:
    """CPU seconds (user + system) of this process so far: the client, never the server."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def count_points(url: str, run_id: str) -> int:
    from mlflow import MlflowClient

    return len(MlflowClient(url).get_metric_history(run_id, "loss"))


def import_time(repeats: int = 7) -> dict[str, float]:
    """Median wall time of a fresh interpreter importing trackbridge, and of one doing nothing."""

    def wall(code: str) -> float:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        return time.perf_counter() - start

    return {
        "import_trackbridge_s": statistics.median(wall("import trackbridge") for _ in range(repeats)),
        "bare_interpreter_s": statistics.median(wall("pass") for _ in range(repeats)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=100_000, help="points for (b) and (c)")
    parser.add_argument("--fluent-points", type=int, default=2_000, help="points for (a)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of (b) and (c)")
    parser.add_argument("--keep", action="store_true", help="keep the server's store under benchmarks/_work")
    args = parser.parse_args()

    work = HERE / "_work" / f"facade-{time.strftime('%Y%m%d-%H%M%S')}"
    os.environ["TRACKBRIDGE_HOME"] = str(work / "trackbridge-home")
    load_before = os.getloadavg()
    server = MlflowServer(work / "server").start()
    try:
        url = server.url
        a = bench_fluent(url, args.fluent_points)
        b_small = bench_log_batch(url, 1000)
        b_rounds, c_rounds, b_cpu, c_cpu = [], [], [], []
        for i in range(args.rounds):
            before = client_cpu_s()
            b_rounds.append(bench_log_batch(url, args.points))
            b_cpu.append((client_cpu_s() - before) / args.points * 1e6)
            before = client_cpu_s()
            c_rounds.append(bench_facade(url, args.points))
            c_cpu.append((client_cpu_s() - before) / args.points * 1e6)
            stored = count_points(url, c_rounds[-1]["remote_run_id"])
            if stored != args.points:
                raise SystemExit(f"round {i}: the facade stored {stored} points, not {args.points}")
            print(f"round {i + 1}: b {b_rounds[-1]:,.0f} points/s ({b_cpu[-1]:.1f} us client CPU/point), "
                  f"c {c_rounds[-1]['rate']:,.0f} points/s ({c_cpu[-1]:.1f} us client CPU/point)", flush=True)
        b = statistics.median(b_rounds)
        c = {key: statistics.median(r[key] for r in c_rounds) for key in ("rate", "seconds", "logging_loop_s")}
        blocked = sorted(c_rounds, key=lambda r: r["median_block_us"])[len(c_rounds) // 2]
    finally:
        server.stop()
    imports = import_time()
    results = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "points": args.points,
        "rounds": args.rounds,
        "b_rounds_pps": b_rounds,
        "c_rounds_pps": [r["rate"] for r in c_rounds],
        "load_avg_before": load_before,
        "load_avg_after": os.getloadavg(),
        "a_fluent_log_metric_pps": a,
        "b_log_batch_1000_pps": b_small,
        "b_log_batch_pps": b,
        "b_client_cpu_us_per_point": statistics.median(b_cpu),
        "c_client_cpu_us_per_point": statistics.median(c_cpu),
        "c_facade_pps": c["rate"],
        "c_facade_seconds": c["seconds"],
        "c_logging_loop_s": c["logging_loop_s"],
        "c_points_stored_each_round": stored,
        "ratio_c_over_b": c["rate"] / b,
        "ratio_c_over_a": c["rate"] / a,
        "median_block_us": blocked["median_block_us"],
        "p99_block_us": blocked["p99_block_us"],
        **imports,
    }
    print_table(results)
    out = HERE / "results" / f"facade_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwritten {out.relative_to(ROOT)}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)


def print_table(r: dict) -> None:
    n = r["points"]
    rows = [
        ("a  mlflow.log_metric, 1 request/point", f"{r['a_fluent_log_metric_pps']:>12,.0f} points/s"),
        ("b  MlflowClient.log_batch, 1,000 points", f"{r['b_log_batch_1000_pps']:>12,.0f} points/s"),
        (f"b  MlflowClient.log_batch, {n:,} points (median)", f"{r['b_log_batch_pps']:>12,.0f} points/s"),
        (f"c  trackbridge facade, {n:,} points + flush (median)", f"{r['c_facade_pps']:>12,.0f} points/s"),
        ("   client CPU per point, b (median)", f"{r['b_client_cpu_us_per_point']:>12.1f} us"),
        ("   client CPU per point, c (median)", f"{r['c_client_cpu_us_per_point']:>12.1f} us"),
        ("   points stored by (c), each round", f"{r['c_points_stored_each_round']:>12,}"),
        ("   c / b   (target >= 1)", f"{r['ratio_c_over_b']:>12.2f}"),
        ("   c / a   (target >= 50)", f"{r['ratio_c_over_a']:>12.0f}"),
        ("   run.log_metrics blocks, median (target <= 10 us)", f"{r['median_block_us']:>12.2f} us"),
        ("   run.log_metrics blocks, p99", f"{r['p99_block_us']:>12.2f} us"),
        ("d  python -c 'import trackbridge' (target <= 0.3 s)", f"{r['import_trackbridge_s']:>12.3f} s"),
        ("   python -c 'pass' (interpreter alone)", f"{r['bare_interpreter_s']:>12.3f} s"),
    ]
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
    print(f"load average before {r['load_avg_before'][0]:.2f}, after {r['load_avg_after'][0]:.2f}")


if __name__ == "__main__":
    main()
