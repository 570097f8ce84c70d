"""``copy --executor ray``: the shards of one copy as tasks of a local Ray instance
(started on 127.0.0.1 by the command), every run copied once, the registry by the
command's own last pass, ``check`` passing, and a second invocation adding nothing."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from conformance.sample import write_sample

from trackbridge.backends.archive.backend import ArchiveBackend

TRACKBRIDGE = str(Path(sys.executable).with_name("trackbridge"))


def test_ray_shards_copy_every_run_once_and_check_passes(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    writer = ArchiveBackend({"path": str(src)}).writer()
    experiments = [write_sample(writer, tmp_path / f"s{i}", experiment=f"exp {i}", n=50).experiment
                   for i in range(3)]
    writer.close()
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
    cmd = [TRACKBRIDGE, "copy", f"dir:{src}", f"dir:{dst}", "--executor", "ray", "--shards", "3", "--json"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert first.returncode == 0, first.stderr[-3000:]
    data = json.loads(first.stdout)
    assert data["ok"] and len(data["shards"]) == 3
    assert sum(s["stats"]["runs_created"] for s in data["shards"]) == 2 * len(experiments)
    assert data["stats"]["runs_created"] == 2 * len(experiments)  # the shards' runs, added up
    assert data["stats"]["model_versions"] == 2 * len(experiments)  # made by the last pass
    assert "shard 0/3" in first.stderr
    reader = ArchiveBackend({"path": str(dst)}).reader()
    assert all(len(list(reader.list_runs(name))) == 2 for name in experiments)
    checked = subprocess.run([TRACKBRIDGE, "check", f"dir:{src}", f"dir:{dst}"], capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stdout[-3000:]
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["stats"]["runs_created"] == 0
