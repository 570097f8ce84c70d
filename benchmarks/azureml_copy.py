"""Benchmark: copying an MLflow experiment into Azure ML (stand-in) versus into MLflow.

    .venv/bin/python benchmarks/azureml_copy.py            # 20 runs x 5 metrics x 2,000 steps
    .venv/bin/python benchmarks/azureml_copy.py --small    # smoke run: 3 runs x 2 metrics x 500 steps

One command: builds the corpus in an embedded sqlite store (benchmarks/_corpus.py, not
timed), starts a plain ``mlflow server`` and the Azure ML stand-in of the tests (a real
``mlflow server`` under the workspace URL prefix, behind the limit proxy of
tests/azureml_helpers.py, the real azureml-mlflow plugin on the client side), then times
``trackbridge copy`` into each as a subprocess, then ``check``.

Prints wall time, points/s and peak RSS for both, the ratio azure/mlflow (what Azure's
250-point batches, 999-point history pages and the plugin cost; the proxy's own
bookkeeping is included), the log-batch requests per 1,000 points, and whether the
proxy refused anything (it must not).  No target: the figures are for the report.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO / "tests"))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

import _corpus  # noqa: E402
import _measure  # noqa: E402
from azureml_helpers import RG, SUB, TOKEN, TOKEN_ENV, WS, AzureLimitProxy, AzurePrefixedServer  # noqa: E402
from servers import MlflowServer  # noqa: E402


def _env(extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_REMOTE_")}
    env.update(extra)
    return env


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--small", action="store_true", help="smoke size")
    args = ap.parse_args()
    spec = (_corpus.CorpusSpec(runs=3, metrics=2, steps=500, params=5, tags=3, artifact_sizes=[1024])
            if args.small else _corpus.CorpusSpec(runs=20, metrics=5, steps=2000, params=10, tags=5,
                                                  artifact_sizes=[1024, 100 * 1024]))
    spec.experiment = "bench-azure"
    tb = str(Path(sys.executable).with_name("trackbridge"))
    with tempfile.TemporaryDirectory(prefix="tb-azure-bench-") as tmp:
        root = Path(tmp)
        src = f"sqlite:///{root / 'src.db'}"
        built = _corpus.build(src, spec, artifact_location=(root / "src-artifacts").as_uri(), log=lambda *_: None)
        plain = MlflowServer(root / "plain").start()
        azure = AzurePrefixedServer(root / "azure").start()
        proxy = AzureLimitProxy(azure.url).start()
        try:
            base = {"TRACKBRIDGE_REMOTE_SRC_BACKEND": "mlflow", "TRACKBRIDGE_REMOTE_SRC_TRACKING_URI": src,
                    "TRACKBRIDGE_HOME": str(root / "home")}
            targets = {
                "mlflow": {"TRACKBRIDGE_REMOTE_DST_BACKEND": "mlflow", "TRACKBRIDGE_REMOTE_DST_TRACKING_URI": plain.url},
                "azureml": {"TRACKBRIDGE_REMOTE_DST_BACKEND": "azureml", "TRACKBRIDGE_REMOTE_DST_SUBSCRIPTION_ID": SUB,
                            "TRACKBRIDGE_REMOTE_DST_RESOURCE_GROUP": RG, "TRACKBRIDGE_REMOTE_DST_WORKSPACE": WS,
                            "TRACKBRIDGE_REMOTE_DST_ENDPOINT": proxy.url, "TRACKBRIDGE_REMOTE_DST_TOKEN_ENV": TOKEN_ENV,
                            TOKEN_ENV: TOKEN},
            }
            results = {}
            for name, remote in targets.items():
                env = _env({**base, **remote, "TRACKBRIDGE_HOME": str(root / f"home-{name}")})
                copied = _measure.run([tb, "copy", "src", "dst", "--json"], env=env, cwd=root, log=root / f"{name}.log")
                checked = _measure.run([tb, "check", "src", "dst"], env=env, cwd=root, log=root / f"{name}-check.log")
                results[name] = {**{k: copied[k] for k in ("rc", "wall_s", "tree_peak_mb", "cpu_s")},
                                 "points_per_s": round(spec.points / copied["wall_s"]) if copied["wall_s"] else None,
                                 "check_rc": checked["rc"]}
            batches = proxy.requests("runs/log-batch")
            refused = [s.path.rsplit("/", 2)[-2:] for s in proxy.seen if s.status >= 400
                       and not s.path.endswith(("get-by-name", "registered-models/get"))]
            report = {
                "spec": spec.as_dict(), "results": results,
                "ratio_wall_azure_over_mlflow": round(results["azureml"]["wall_s"] / results["mlflow"]["wall_s"], 2),
                "log_batch_requests_per_1000_points": round(1000 * len(batches) / spec.points, 2),
                "max_metrics_per_batch_seen": max((s.metrics for s in batches), default=0),
                "proxy_refusals": refused,
                "corpus_build_s": round(built["seconds"], 1),
            }
        finally:
            proxy.stop()
            azure.stop()
            plain.stop()
    print(json.dumps(report, indent=1))
    out = HERE / "results" / f"azureml_copy-{time.strftime('%Y%m%d')}{'-small' if args.small else ''}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    ok = all(r["rc"] == 0 and r["check_rc"] == 0 for r in results.values()) and not report["proxy_refusals"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
