"""Comet test helpers: archives written by the real comet_ml SDK, offline, in a child
process (as a user's script would: the SDK behaves differently under pytest, e.g. it
skips its ``process duration`` metric), with every non-loopback connection refused
by an audit hook in the child and Comet's error reporting off."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

#: what :func:`sdk_archive` logs, for the tests to compare the reader with.
PARAMS = {"lr": 0.01, "batch": 32, "optimizer": {"name": "adam", "betas": [0.9, 0.999], "sched": {"kind": "cos"}},
          "use_amp": True, "label": "base"}
OTHERS = {"owner": "ana", "dataset": "mnist-v2", "seed": 7}
LABELS = ["baseline", "cnn"]
STEPS = 1300
EPOCH_EVERY = 100
NAME = "sdk-run"
PROJECT = "tb-proj"
WORKSPACE = "tb-ws"

_GUARD = '''
import socket, sys
def _guard(event, args):
    if event == "socket.connect":
        addr = args[1]
        host = addr[0] if isinstance(addr, tuple) else addr
        if isinstance(host, str) and host not in ("127.0.0.1", "::1", "localhost") and not host.startswith("/"):
            raise ConnectionRefusedError(f"test guard: no network ({host})")
sys.addaudithook(_guard)
'''

_SDK_SCRIPT = '''
import math, os, sys, json
import comet_ml
from comet_ml import ExperimentConfig
spec = json.loads(sys.argv[1])
exp = comet_ml.start(online=False, project_name=spec["project"], workspace=spec["workspace"],
                     experiment_config=ExperimentConfig(offline_directory=spec["out"], log_env_details=False,
                                                        log_code=False, log_git_metadata=False,
                                                        log_git_patch=False, display_summary_level=0))
exp.set_name(spec["name"])
exp.log_parameters(spec["params"])
for i in range(spec["steps"]):
    exp.log_metric("loss", 1.0 / (i + 1), step=i, epoch=i // spec["epoch_every"])
    if i % 10 == 0:
        exp.log_metric("acc", i / spec["steps"], step=i, epoch=i // spec["epoch_every"])
exp.log_metric("weird", float("nan"), step=spec["steps"])
exp.log_metric("weird", float("inf"), step=spec["steps"] + 1)
exp.log_metric("weird", float("-inf"), step=spec["steps"] + 2)
exp.log_others(spec["others"])
exp.add_tags(spec["labels"])
with open(spec["asset"], "w") as fh:
    fh.write("asset body\\n")
exp.log_asset(spec["asset"], file_name="reports/summary.txt")
exp.log_model("classifier", spec["model_dir"])
exp.register_model("classifier", version="1.2.0", status="Production", tags=["prod"], description="first")
exp.log_html("<b>html</b>")
exp.log_text("a text sample")
print("stdout line from the script")
exp.end()
'''


def child_env(home: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of an SDK child: private HOME, error reporting off, no Comet keys."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("COMET_")}
    home.mkdir(parents=True, exist_ok=True)
    env.update({"HOME": str(home), "COMET_ERROR_TRACKING_ENABLE": "false", "COMET_DISABLE_AUTO_LOGGING": "1",
                "PYTHONUNBUFFERED": "1"})
    env.update(extra or {})
    return env


def run_python(code: str, *args: str, env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    """Run ``code`` in a child interpreter with the network guard installed."""
    script = _GUARD + textwrap.dedent(code)
    return subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def sdk_archive(tmp: Path, steps: int = STEPS) -> Path:
    """One archive written by comet_ml offline (see :data:`PARAMS` and friends); its path."""
    out = tmp / "sdk-out"
    model_dir = tmp / "model-src"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (model_dir / "config.json").write_text('{"layers": 3}')
    spec = {"project": PROJECT, "workspace": WORKSPACE, "out": str(out), "name": NAME, "params": PARAMS,
            "steps": steps, "epoch_every": EPOCH_EVERY, "others": OTHERS, "labels": LABELS,
            "asset": str(tmp / "summary.txt"), "model_dir": str(model_dir)}
    done = run_python(_SDK_SCRIPT, json.dumps(spec), env=child_env(tmp / "home"))
    assert done.returncode == 0, done.stderr[-3000:]
    archives = sorted(out.glob("*.zip"))
    assert len(archives) == 1, (archives, done.stderr[-2000:])
    return archives[0]


def expected_loss(steps: int = STEPS) -> list[tuple[int, float]]:
    return [(i, 1.0 / (i + 1)) for i in range(steps)]


def same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


def messages(archive: Path) -> list[dict[str, Any]]:
    import zipfile

    with zipfile.ZipFile(archive) as zf:
        return [json.loads(line) for line in zf.read("messages.json").splitlines() if line.strip()]
