"""Benchmark: copying an MLflow experiment into W&B offline runs (``wandb-offline:``).

    .venv/bin/python benchmarks/wandb_copy.py            # full size: 50 runs x 5 metrics x 2,000 steps
    .venv/bin/python benchmarks/wandb_copy.py --small    # smoke run: 5 runs x 200 steps

Starts one real ``mlflow server`` on 127.0.0.1 (tests/servers.py), builds the sync
benchmark corpus on it (benchmarks/_corpus.py, not timed), then times, each as a
subprocess:

  (e) the raw read alone: bare MlflowClient ``get_metric_history`` of every series,
      8 threads (benchmarks/_raw.py read), the least any copy must do;
  (w) ``trackbridge copy A:<exp> wandb-offline:DIR`` (every point, params, tags,
      artifacts, written as .wandb files);
  (k) ``trackbridge check A:<exp> wandb-offline:DIR`` (pass/fail), and a second copy
      (must create nothing).

Target: w / e <= 1.2.  Prints a table and writes benchmarks/results/wandb_copy-<date>[-small].json.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from _corpus import CorpusSpec, build  # noqa: E402
from _results import save, show  # noqa: E402


def _servers():
    spec = importlib.util.spec_from_file_location("tb_test_servers", REPO / "tests" / "servers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    t = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
    took = time.perf_counter() - t
    if done.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return took, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="smoke run: 5 runs x 200 steps")
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--steps", type=int, default=2000)
    args = ap.parse_args()
    spec = CorpusSpec(runs=5, steps=200) if args.small else CorpusSpec(runs=args.runs, steps=args.steps)
    work = Path(tempfile.mkdtemp(prefix="tb-wandb-copy-"))
    server = _servers().MlflowServer(work / "server").start()
    try:
        build(server.url, spec, log=lambda m: print(m, flush=True))
        env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_REMOTE_")}
        env.update(MLFLOW_DISABLE_TELEMETRY="true", TRACKBRIDGE_REMOTE_A_BACKEND="mlflow",
                   TRACKBRIDGE_REMOTE_A_TRACKING_URI=server.url, TRACKBRIDGE_HOME=str(work / "tbhome"))
        tb = str(Path(sys.executable).with_name("trackbridge"))
        dst = f"wandb-offline:{work / 'wandb'}"
        raw_s, raw_out = timed([sys.executable, str(HERE / "_raw.py"), "read", "--src", server.url,
                                "--experiment", spec.experiment, "--threads", "8"], env)
        raw = json.loads(raw_out.strip().splitlines()[-1])
        copy_s, copy_out = timed([tb, "copy", f"A:{spec.experiment}", dst, "--json"], env)
        copied = json.loads(copy_out)
        check_s, check_out = timed([tb, "check", f"A:{spec.experiment}", dst], env)
        again_s, again_out = timed([tb, "copy", f"A:{spec.experiment}", dst, "--json"], env)
        again = json.loads(again_out)
        result = {
            "spec": spec.as_dict(),
            "raw_read_s": round(raw["seconds"], 3), "raw_read_wall_s": round(raw_s, 3), "raw_points": raw["points"],
            "copy_s": round(copy_s, 3), "copy_points": copied["stats"]["points"],
            "copy_points_per_s": round(copied["stats"]["points"] / copy_s),
            "copy_ok": copied["ok"], "check_s": round(check_s, 3),
            "check_ok": "0 differ, 0 errors" in check_out and "0 missing" in check_out,
            "second_copy_s": round(again_s, 3), "second_copy_created": again["stats"]["runs_created"],
            "w/e": round(copy_s / raw_s, 2),
        }
        result["targets"] = {"w/e<=1.2": result["w/e"] <= 1.2, "check": result["check_ok"],
                             "second copy creates nothing": result["second_copy_created"] == 0}
        show(result)
        save("wandb_copy", result, args.small)
    finally:
        server.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
