"""``--shard i/n``: n workers copying one source into one destination at once copy every
run exactly once (a nested run with its parent), and one last pass without ``--shard``
copies the registry; ``check`` passes."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conformance.sample import write_sample

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.errors import ConfigError
from trackbridge.model import RunRecord
from trackbridge.sync.shard import Shard

TRACKBRIDGE = str(Path(sys.executable).with_name("trackbridge"))


def _archive_with_runs(root: Path, tmp: Path, samples: int) -> list[str]:
    writer = ArchiveBackend({"path": str(root)}).writer()
    experiments = [write_sample(writer, tmp / f"s{i}", experiment=f"exp {i}", n=50).experiment for i in range(samples)]
    writer.close()
    return experiments


def test_parts_are_disjoint_cover_everything_and_keep_children_with_parents() -> None:
    runs = [RunRecord("p", f"r{i}", "e", parent_run_id=f"r{i - 1}" if i % 3 else None) for i in range(30)]
    parts = [Shard(i, 4).keep(runs) for i in range(4)]
    ids = [r.run_id for part in parts for r in part]
    assert sorted(ids) == sorted(r.run_id for r in runs) and len(ids) == len(set(ids))
    for part in parts:
        kept = {r.run_id for r in part}
        assert all(r.parent_run_id in kept for r in part if r.parent_run_id)


@pytest.mark.parametrize("text", ["4/4", "-1/2", "1", "a/b", "0/0"])
def test_a_bad_shard_says_how_to_write_it(text: str) -> None:
    with pytest.raises(ConfigError, match="--shard"):
        Shard.parse(text)


def test_shards_at_once_copy_every_run_once_then_the_registry(tmp_path: Path) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    experiments = _archive_with_runs(src, tmp_path, 3)
    workers = [subprocess.Popen([TRACKBRIDGE, "copy", f"dir:{src}", f"dir:{dst}", "--shard", f"{i}/3", "--json"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(3)]
    created = 0
    for worker in workers:
        out, err = worker.communicate(timeout=300)
        assert worker.returncode == 0, err[-2000:]
        data = json.loads(out)
        created += data["stats"]["runs_created"]
        assert data["stats"]["model_versions"] == 0  # the registry waits for the last pass
    assert created == 2 * len(experiments)
    last = subprocess.run([TRACKBRIDGE, "copy", f"dir:{src}", f"dir:{dst}", "--json"], capture_output=True,
                          text=True, timeout=300)
    assert last.returncode == 0, last.stderr[-2000:]
    stats = json.loads(last.stdout)["stats"]
    assert stats["runs_created"] == 0 and stats["model_versions"] == 2 * len(experiments)
    reader = ArchiveBackend({"path": str(dst)}).reader()
    for name in experiments:
        assert len(list(reader.list_runs(name))) == 2
    checked = subprocess.run([TRACKBRIDGE, "check", f"dir:{src}", f"dir:{dst}"], capture_output=True, text=True,
                             timeout=300)
    assert checked.returncode == 0, checked.stdout[-3000:]


def test_delete_is_refused_with_a_shard(tmp_path: Path) -> None:
    _archive_with_runs(tmp_path / "src", tmp_path, 1)
    out = subprocess.run([TRACKBRIDGE, "sync", f"dir:{tmp_path / 'src'}", f"dir:{tmp_path / 'dst'}", "--shard", "0/2",
                          "--delete"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and "--delete cannot be combined with --shard" in out.stderr
