"""Engine parts that need no platform: retry, point index, fingerprint, fitting, waves, ledger."""
from __future__ import annotations

import json
import math
import random

import pytest

from trackbridge.backends.base import Features, Limits, RegistryScheme
from trackbridge.errors import BackendError, TransientBackendError
from trackbridge.model import ArtifactInfo, MetricPoint, MetricSummary, RunRecord, RunStatus
from trackbridge.sync.check import compare_series
from trackbridge.sync.engine import waves
from trackbridge.sync.fit import OVERFLOW_FILE, Target, fit_run
from trackbridge.sync.ledger import Ledger
from trackbridge.sync.plan import Action, RunPlan
from trackbridge.sync.points import PointIndex
from trackbridge.sync.provenance import COMPLETE, SOURCE_RUN_ID, fingerprint
from trackbridge.sync.retry import Retry


def _run(**kw) -> RunRecord:
    base = dict(platform="mlflow", run_id="r1", experiment="e", name="n", status=RunStatus.FINISHED,
                start_time=1, end_time=2, params={"lr": "0.1"}, tags={"t": "v"},
                metrics={"loss": MetricSummary("loss", 0.5, 9, 100)})
    base.update(kw)
    return RunRecord(**base)


# -- retry --------------------------------------------------------------------


def test_retry_backs_off_with_jitter_and_honours_retry_after() -> None:
    sleeps: list[float] = []
    retry = Retry(attempts=4, base=1.0, cap=8.0, sleep=sleeps.append, rng=random.Random(1))
    calls = {"n": 0}

    def flaky() -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TransientBackendError("429", retry_after=5.0)
        if calls["n"] < 4:
            raise TransientBackendError("503")
        return "ok"

    assert retry.call(flaky) == "ok"
    assert calls["n"] == 4
    assert sleeps[0] >= 5.0  # the server's Retry-After wins over a shorter backoff
    assert 1.0 <= sleeps[1] <= 2.0 and 2.0 <= sleeps[2] <= 4.0  # equal jitter: [d/2, d] with d = base * 2**n
    assert len(set(sleeps)) == 3


def test_retry_gives_up_and_never_retries_real_errors() -> None:
    retry = Retry(attempts=3, sleep=lambda s: None)
    calls = {"n": 0}

    def down() -> None:
        calls["n"] += 1
        raise TransientBackendError("connection refused")

    with pytest.raises(TransientBackendError):
        retry.call(down)
    assert calls["n"] == 3

    def refused() -> None:
        calls["n"] += 1
        raise BackendError("bad request")

    calls["n"] = 0
    with pytest.raises(BackendError):
        retry.call(refused)
    assert calls["n"] == 1


def test_retry_iterate_resumes_a_paged_stream_without_repeating_pages() -> None:
    state = {"fail": True}

    def pages():
        yield [1]
        yield [2]
        if state["fail"]:
            state["fail"] = False
            raise TransientBackendError("reset")
        yield [3]

    assert list(Retry(sleep=lambda s: None).iterate(pages)) == [[1], [2], [3]]


# -- points ---------------------------------------------------------------------


def test_point_index_membership_with_nan_and_inf() -> None:
    pts = [MetricPoint(i, float(i) / 3, 1000 + i) for i in range(5000)]
    pts += [MetricPoint(7, math.nan, 5), MetricPoint(8, math.inf, 6), MetricPoint(9, -math.inf, 7)]
    index = PointIndex([pts[:3000], pts[3000:]])
    assert len(index) == len(pts)
    assert all(p in index for p in pts)
    assert MetricPoint(7, math.nan, 5) in index  # NaN equals NaN
    assert MetricPoint(7, math.nan, 6) not in index
    assert MetricPoint(1, 1 / 3 + 1e-12, 1001) not in index
    assert MetricPoint(0, 0.0, 1) not in PointIndex([])


def test_compare_series_is_order_agnostic_and_counts_differences() -> None:
    pts = [MetricPoint(i, math.nan if i == 3 else i * 0.5, i) for i in range(100)]
    same = compare_series(lambda: [pts], lambda: [list(reversed(pts))])
    assert same.equal and same.src_count == 100 and same.dst_count == 100
    diff = compare_series(lambda: [pts], lambda: [pts[:90] + [MetricPoint(1, 9.0, 1)]])
    assert not diff.equal and diff.missing == 10 and diff.extra == 1 and len(diff.examples) == 3


# -- fingerprint and fitting ------------------------------------------------------


def test_fingerprint_changes_with_each_observable_field_only() -> None:
    files = [ArtifactInfo("a.txt", 3)]
    fp = fingerprint(_run(), files)
    assert fp == fingerprint(_run(), list(files))
    assert fp == fingerprint(_run(tags={"t": "v", COMPLETE: "x", SOURCE_RUN_ID: "y"}), files)
    changed = [
        _run(status=RunStatus.FAILED), _run(end_time=3), _run(params={"lr": "0.2"}), _run(tags={"t": "w"}),
        _run(metrics={"loss": MetricSummary("loss", 0.5, 10, 100)}), _run(notes="n"),
    ]
    assert all(fingerprint(r, files) != fp for r in changed)
    assert fingerprint(_run(), files + [ArtifactInfo("b.txt", 1)]) != fp
    assert fingerprint(_run(), [ArtifactInfo("a.txt", 4)]) != fp


def test_fit_records_renames_truncations_and_collisions() -> None:
    limits = Limits(max_key_length=10, max_param_value_length=5, key_pattern=r"[a-z0-9_]*", max_tags_per_run=10, flat_params=True)
    run = _run(params={"bad key!": "123456789", "opt": {"lr": 1}}, tags={f"t{i}": "x" for i in range(5)},
               metrics={"a-b": MetricSummary("a-b", 1.0, 0, 0), "a_b": MetricSummary("a_b", 1.0, 0, 0)})
    fitted = fit_run(run, Target(Features(), limits))
    assert fitted.params["bad_key_"] == "12345"
    assert fitted.record.renamed["param:bad_key_"] == "bad key!"
    assert fitted.record.truncated["param:bad_key_"] == 9
    assert fitted.params["opt_lr"] == "1"  # flattened, then sanitised
    # 10 tags per run, 9 of them trackbridge's own: one user tag fits, the other 4 are kept whole in a file.
    assert len(fitted.tags) == 1 and fitted.record.kept["tags"].startswith("4 tag(s) past")
    assert json.loads(fitted.param_files()[OVERFLOW_FILE]) == {f"t{i}": "x" for i in range(1, 5)}
    assert fitted.errors and "both become" in fitted.errors[0]


# -- orchestration helpers --------------------------------------------------------


def test_waves_put_parents_before_children() -> None:
    def plan(run_id: str, parent: str | None) -> RunPlan:
        src = _run(run_id=run_id, parent_run_id=parent)
        return RunPlan(Action.CREATE, src, "e", "fp", [], fit_run(src, Target(Features(), Limits())))

    grouped = waves([plan("c2", "c1"), plan("c1", "p"), plan("p", None), plan("o", "outside")])
    ids = [[r.src.run_id for r in wave] for wave in grouped]
    assert ids == [["p", "o"], ["c1"], ["c2"]]


def test_ledger_is_created_lazily_and_round_trips(tmp_path) -> None:
    ledger = Ledger.in_home(tmp_path / "home")
    assert ledger.lookup_run("a", "r", "b") is None
    assert not ledger.path.exists()
    ledger.record_runs("a", "b", [("r", "d1", "fp1")])
    ledger.record_runs("a", "b", [("r", "d2", "fp2")])
    assert ledger.lookup_run("a", "r", "b") == ("d2", "fp2")
    inv = ledger.start_invocation("sync", "a", "b")
    ledger.finish_invocation(inv, {"points": 3})
    ledger.forget_runs("a", "b", ["r"])
    assert ledger.lookup_run("a", "r", "b") is None
    ledger.close()


def test_ledger_records_the_runs_of_an_invocation_in_one_transaction(tmp_path) -> None:
    """A commit (two fsyncs) per copied run was a tenth of the copy of 1,000 small runs."""
    ledger = Ledger.in_home(tmp_path / "home")
    statements: list[str] = []
    ledger._db().set_trace_callback(statements.append)
    ledger.record_runs("a", "b", [(f"r{i}", f"d{i}", "fp") for i in range(50)])
    assert sum(s.strip().upper() == "COMMIT" for s in statements) == 1
    assert ledger.lookup_run("a", "r49", "b") == ("d49", "fp")
    ledger.forget_runs("a", "b", ["r0", "r1"])
    assert ledger.lookup_run("a", "r0", "b") is None and ledger.lookup_run("a", "r2", "b") == ("d2", "fp")
    ledger.close()


def test_target_can_refuses_a_name_that_is_no_feature() -> None:
    """A misspelt feature must not read as "the destination can": it is an error."""
    target = Target(Features(registry=RegistryScheme.NONE), Limits())
    assert target.can("notes") is True
    assert target.can("registry") is False
    with pytest.raises(ValueError, match="unknown feature 'note'"):
        target.can("note")
