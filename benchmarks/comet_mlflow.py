"""MLflow -> Comet offline of the sync benchmark corpus: ``trackbridge copy`` from a real
``mlflow server`` into a ``comet-offline`` folder, against the raw REST read of the
same points alone (target: copy wall time <= 1.2x the raw read).

    .venv/bin/python benchmarks/comet_mlflow.py            # sync_mlflow's corpus: 50 runs x 5 keys x 2,000 steps
    .venv/bin/python benchmarks/comet_mlflow.py --small    # smoke: 3 runs x 2 keys x 500 steps
    .venv/bin/python benchmarks/comet_mlflow.py --runs 50 --steps 2000 --threads 8 [--out FILE]

Server A (``mlflow server --workers 1``, sqlite, ``tests/servers.py``) gets the corpus
of ``benchmarks/_corpus.py`` (untimed). Then, each as a subprocess measured by
``benchmarks/_measure.py`` (wall time from spawn to exit, peak RSS):

* ``raw.read``: ``benchmarks/_raw.py read``: ``get_metric_history`` of every (run, key), ``threads`` threads;
* ``copy``: ``trackbridge copy A:<exp> comet-offline:<folder> --json`` (params, tags, artifacts,
  archives zipped: everything, not only points);
* ``check``: ``trackbridge check`` of the copy (PASS = exit code 0).

Prints a table and the ratio; writes ``benchmarks/results/comet_mlflow-<date>.json``
(``--small`` writes nothing unless ``--out`` is given).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import _corpus  # noqa: E402
from _measure import run as measure  # noqa: E402
from _results import save  # noqa: E402

TARGET = 1.2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--metrics", type=int, default=5)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    spec = (_corpus.CorpusSpec(runs=3, metrics=2, steps=500, params=5, tags=3, artifact_sizes=[1024])
            if args.small else _corpus.CorpusSpec(runs=args.runs, metrics=args.metrics, steps=args.steps))
    spec.experiment = "bench-comet"
    from servers import MlflowServer

    tb = str(Path(sys.executable).with_name("trackbridge"))
    with tempfile.TemporaryDirectory(prefix="tb-comet-mlflow-bench-") as tmp:
        root = Path(tmp)
        server = MlflowServer(root / "A").start()
        try:
            _corpus.build(server.url, spec, log=lambda *_: None)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("COMET_", "MLFLOW_TRACKING"))}
            env.update({"TRACKBRIDGE_REMOTE_A_BACKEND": "mlflow", "TRACKBRIDGE_REMOTE_A_TRACKING_URI": server.url,
                        "TRACKBRIDGE_HOME": str(root / "home"), "MLFLOW_DISABLE_TELEMETRY": "true",
                        "COMET_ERROR_TRACKING_ENABLE": "false", "HOME": str(root / "home")})
            raw = measure([sys.executable, str(ROOT / "benchmarks" / "_raw.py"), "read", "--src", server.url,
                           "--experiment", spec.experiment, "--threads", str(args.threads)],
                          env=env, cwd=root, log=root / "logs" / "raw.log")
            dst = f"comet-offline:{root / 'comet'}"
            copy = measure([tb, "copy", f"A:{spec.experiment}", dst, "--json"], env=env, cwd=root,
                           log=root / "logs" / "copy.log")
            if copy["rc"] != 0:
                raise SystemExit(f"copy failed:\n{copy['stderr_tail']}")
            check = measure([tb, "check", f"A:{spec.experiment}", dst], env=env, cwd=root,
                            log=root / "logs" / "check.log")
        finally:
            server.stop()
    raw_out = json.loads(raw["stdout"].strip().splitlines()[-1])
    copied = json.loads(copy["stdout"])
    result = {
        "spec": spec.as_dict(), "points": spec.points,
        "raw_read": {"wall_s": raw["wall_s"], "inner_s": raw_out.get("seconds"), "points": raw_out.get("points"),
                     "tree_peak_mb": raw["tree_peak_mb"]},
        "copy": {"wall_s": copy["wall_s"], "inner_s": copied.get("elapsed_s"), "points": copied["stats"]["points"],
                 "tree_peak_mb": copy["tree_peak_mb"], "hiwater_mb": copy["hiwater_mb"]},
        "check_rc": check["rc"], "ratio_copy_over_raw_read": round(copy["wall_s"] / raw["wall_s"], 2),
        "target": TARGET,
    }
    print(f"{'step':<10}{'wall s':>9}{'peak MB':>10}")
    for name, m in (("raw.read", raw), ("copy", copy), ("check", check)):
        print(f"{name:<10}{m['wall_s']:>9.2f}{m['tree_peak_mb']:>10.1f}")
    ratio = result["ratio_copy_over_raw_read"]
    print(f"{spec.points:,} points MLflow -> comet-offline: copy/raw-read {ratio}x "
          f"(target <= {TARGET}: {'PASS' if ratio <= TARGET else 'above target'}); "
          f"check {'PASS' if check['rc'] == 0 else 'FAIL'}")
    if args.small and args.out is None:
        return
    save("comet_mlflow", result, out=args.out)


if __name__ == "__main__":
    main()
