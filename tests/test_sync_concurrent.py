"""Two copies into one destination at the same time (an overlapping cron mirror, two
machines): every run ends up there exactly once, every model version once, and the
result passes check.  Real processes, a real server, several times."""
from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from corpus import build_corpus, invoke, set_remotes
from mlflow import MlflowClient

TRACKBRIDGE = str(Path(sys.executable).with_name("trackbridge"))


@pytest.mark.slow
@pytest.mark.parametrize("attempt", range(3))
def test_two_copies_at_once_leave_every_run_exactly_once(mlflow_server, monkeypatch, isolated_env: Path,
                                                        attempt: int) -> None:
    prefix = f"race{attempt}-{uuid.uuid4().hex[:6]} "
    local = f"sqlite:///{isolated_env / 'src.db'}"
    corpus = build_corpus(local, isolated_env / "staging", prefix=prefix)
    set_remotes(monkeypatch, src=local, dst=mlflow_server.url)
    args = ["src", "dst", "--experiment", corpus.experiment, "--experiment", corpus.other_experiment]
    env = dict(os.environ)
    procs = [subprocess.Popen([TRACKBRIDGE, "copy", *args, "--transfers", "2", "--json"], env={
        **env, "TRACKBRIDGE_HOME": str(isolated_env / f"home{i}")}, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for i in range(2)]
    outputs = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [(o[0].decode()[-3000:], o[1].decode()[-1500:]) for o in outputs]

    client = MlflowClient(mlflow_server.url)
    exp_ids = [client.get_experiment_by_name(n).experiment_id for n in (corpus.experiment, corpus.other_experiment)]
    copies: dict[str, list[str]] = {}
    for run in client.search_runs(exp_ids, max_results=1000):
        copies.setdefault(run.data.tags["trackbridge.source.run_id"], []).append(run.info.run_id)
    assert sorted(copies) == sorted(corpus.runs.values())
    assert all(len(ids) == 1 for ids in copies.values()), copies
    versions = client.search_model_versions(f"name = '{corpus.model}'")
    assert sorted(v.tags["trackbridge.source.version"] for v in versions) == ["1", "2", "3"]
    checked = invoke("check", *args)
    assert checked.exit_code == 0, checked.output


def test_a_create_run_that_timed_out_after_creating_leaves_no_duplicate(tmp_path: Path, monkeypatch) -> None:
    """The server created the run but the answer was lost: the retry creates a second
    one.  The copy carrying this invocation's claim is settled like a concurrent one."""
    from conformance.sample import write_sample

    from trackbridge.backends.archive.backend import ArchiveBackend
    from trackbridge.errors import TransientBackendError
    from trackbridge.sync.check import Checker
    from trackbridge.sync.engine import Options, SyncEngine, target_of
    from trackbridge.sync.plan import Selection
    from trackbridge.sync.retry import Retry

    src = ArchiveBackend({"path": str(tmp_path / "src")})
    sample = write_sample(src.writer(), tmp_path / "files", with_model=False)
    src.writer().close()
    dst = ArchiveBackend({"path": str(tmp_path / "dst")})
    writer = dst.writer()
    real_create, lost = writer.create_run, []

    def create_then_time_out(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        run_id = real_create(*args, **kwargs)
        if len(lost) < 2:  # the first create of each run: created, but the answer is lost
            lost.append(run_id)
            raise TransientBackendError("read timed out")
        return run_id

    monkeypatch.setattr(writer, "create_run", create_then_time_out)
    selection = Selection([sample.experiment])
    outcome = SyncEngine(ArchiveBackend({"path": str(tmp_path / "src")}), dst, Options(mode="copy", transfers=1),
                         retry=Retry(attempts=3, base=0.01)).run(selection)
    assert outcome.ok, outcome.errors
    assert len(lost) == 2
    runs = list(ArchiveBackend({"path": str(tmp_path / "dst")}).reader().list_runs(sample.experiment))
    assert len(runs) == 2, [r.run_id for r in runs]
    src2, dst2 = ArchiveBackend({"path": str(tmp_path / "src")}), ArchiveBackend({"path": str(tmp_path / "dst")})
    report = Checker(src2.reader(), dst2.reader(), target_of(src2, dst2, dst2.writer().limits)).check(selection)
    assert report.ok, [f.details for f in report.findings]
