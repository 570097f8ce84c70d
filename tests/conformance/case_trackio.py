"""Trackio's project databases join the conformance suite (``trackio:PATH``, read-only for
now): the canonical sample is written by trackio itself (``trackio.init/log/log_system/
finish``, in a child process, since trackio fixes its directory when imported), as much of
it as trackio holds, and read back through the backend."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from cases import Case
from sample import Sample, series

from trackbridge.backends.base import Backend
from trackbridge.backends.trackio.backend import TrackioBackend
from trackbridge.model import MetricPoint

PARAMS = {"lr": 0.01, "layers": 3, "optimizer": {"name": "adam", "beta": 0.9}, "note": "ü"}

#: logs the sample with trackio, then prints every metric row as trackio stored it (plain
#: sqlite: the times trackio gave each row are what the sample must expect).
WRITE = textwrap.dedent("""
    import json, sqlite3, sys
    import trackio
    spec = json.loads(sys.stdin.read())
    project = spec["project"]
    quiet = dict(auto_log_cpu=False, auto_log_gpu=False, embed=False)
    trackio.init(project=project, name="parent ✓", config=spec["params"], **quiet)
    for step, values in spec["rows"]:  # "nan"/"inf"/"-inf" crossed JSON as text
        trackio.log({k: float(v) if isinstance(v, str) else v for k, v in values.items()}, step=step)
    for values in spec["system"]:
        trackio.log_system(values)
    trackio.finish()
    trackio.init(project=project, name="child", **quiet)
    for i in range(10):
        trackio.log({"loss": 1.0 / (i + 1)}, step=i)
    trackio.finish()
    db = sqlite3.connect(spec["db"])
    rows = db.execute("SELECT r.run_name, m.step, m.timestamp, m.metrics FROM metrics m JOIN configs r "
                      "ON r.run_id = m.run_id ORDER BY m.id").fetchall()
    print(json.dumps([[n, s, t, json.loads(v)] for n, s, t, v in rows]))
""")


def _make(tmp: Path, _fixtures: dict[str, Any]) -> Backend:
    return TrackioBackend({"path": str(tmp / "trackio")})


def _cli(backend: Backend) -> tuple[str, dict[str, str]]:
    return f"trackio:{backend.path}", {}


def _ms(iso: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(iso).timestamp() * 1000)


def seed(backend: Backend, tmp: Path) -> Sample:
    """The parent's series (one ``trackio.log`` per point, NaN/±inf as trackio spells them),
    config, system metrics, and a child run."""
    root: Path = backend.path  # type: ignore[attr-defined]
    sample = Sample("conformance")
    rows = [(p.step, {key: _jsonable(p.value)}) for key, points in series().items() for p in points]
    spec = {"project": sample.experiment, "params": PARAMS, "rows": rows,
            "system": [{"system/cpu": 10.0 + i} for i in range(5)], "db": str(root / "conformance.db")}
    env = {**os.environ, "TRACKIO_DIR": str(root), "HF_HOME": str(tmp / "hf"), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-c", WRITE], input=json.dumps(spec), env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    written = json.loads(done.stdout.strip().splitlines()[-1])
    for name, step, stamp, values in written:
        if name != "parent ✓":
            continue
        for key, value in values.items():
            number = {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(value, value)
            sample.series.setdefault(key, []).append(MetricPoint(step, float(number), _ms(stamp)))
    sample.params = PARAMS
    return sample


def _jsonable(value: float) -> Any:
    """JSON cannot hold NaN/±inf; trackio's own ``log`` turns floats into its spellings, and
    the child gets them through JSON, so they cross as the floats they are."""
    return value if math.isfinite(value) else {math.inf: "inf", -math.inf: "-inf"}.get(value, "nan")


CASES = [Case("trackio", _make, cli=_cli, seed=seed)]
