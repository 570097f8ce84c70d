"""``check --report`` and ``plan --report``: the HTML a person signs a migration off with.

A small sweep is written into a real ``dir:`` archive, all its runs but the last copied to
another with the real engine (the last is missing there), then one run is damaged by hand
in the destination's files (a param in its ``run.json``, one point in its Parquet part, a
version's stage), as ``tests/conformance/test_check_damage.py`` does.  The report is
opened in a real headless Chromium (Debian's package, started here): the page must load
with no console message, show the summary, mark the damaged run and its cells, and
reference nothing outside itself.
"""
from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from trackbridge.backends.archive.backend import ArchiveBackend
from trackbridge.backends.base import RunFilter
from trackbridge.cli import main
from trackbridge.model import MetricPoint, ModelVersion, RegisteredModel, RunStatus
from trackbridge.report import ReportCollector
from trackbridge.report.downsample import BUCKETS, Downsampler
from trackbridge.provenance_tags import SOURCE_VERSION
from trackbridge.report.data import ModelData
from trackbridge.report.views import DIFFERS, MISSING, registry_view
from trackbridge.sync.check import Checker, Finding
from trackbridge.sync.engine import Options, SyncEngine, target_of
from trackbridge.sync.plan import Selection

T0 = 1_700_000_000_000
SECRET = "hunter2-secret"
EXPERIMENT = "churn sweep"
STEPS = 1_500


def write_sweep(root: Path, files: Path, runs: int = 4, steps: int = STEPS) -> None:
    """A small hyper-parameter sweep as people log it: params, tags (one a git URL with a
    password in it), a loss and an accuracy curve, an artifact, a registered model.  The
    last run is of a later cohort (tag ``cohort=b``), so a copy can leave it out."""
    writer = ArchiveBackend({"path": str(root)}).writer()
    exp = writer.ensure_experiment(EXPERIMENT)
    files.mkdir(parents=True, exist_ok=True)
    best = ""
    for i in range(runs):
        lr = 0.1 / 10 ** i
        run = writer.create_run(exp, name=f"lr={lr:g}", start_time=T0 + i * 1000, user="ada",
                                tags={"team": "churn", "git": f"https://ada:{SECRET}@git.example.com/churn.git",
                                      "cohort": "b" if i == runs - 1 else "a"})
        writer.log_params(run, {"lr": str(lr), "epochs": str(steps), "optimizer": "adam"})
        loss = [MetricPoint(s, math.exp(-s / (300 * (i + 1))) + 0.02 * math.sin(s / 9), T0 + s * 100)
                for s in range(steps)]
        acc = [MetricPoint(s, 1 - 0.5 * math.exp(-s / 400) * (i + 1) / runs, T0 + s * 100) for s in range(0, steps, 10)]
        writer.log_metrics(run, [("loss", p) for p in loss] + [("val/acc", p) for p in acc])
        (files / "report.txt").write_text(f"run {i}\n", encoding="utf-8")
        writer.log_artifact(run, files / "report.txt")
        writer.finish_run(run, RunStatus.FINISHED, T0 + steps * 100)
        best = best or run
    writer.register_model(RegisteredModel("churn-model", "the churn classifier"))
    for stage in ("Archived", "Production"):
        made = writer.create_model_version(ModelVersion("churn-model", "", run_id=best, description=stage), best)
        writer.set_version_stage("churn-model", made.version, stage)
    writer.set_model_alias("churn-model", "champion", made.version)
    writer.close()


def _run_dir(dst: Path, name: str) -> Path:
    for path in dst.glob("experiments/*/runs/*/run.json"):
        if json.loads(path.read_text(encoding="utf-8"))["name"] == name:
            return path.parent
    raise AssertionError(f"no run {name!r} in {dst}")


def damage(dst: Path, name: str = "lr=0.01") -> None:
    """Change a param in ``run.json`` and one loss value in the run's Parquet part, and the
    stage of the first registry version, by hand."""
    version = next(dst.glob("registry/*/versions/1.json"))
    data = json.loads(version.read_text(encoding="utf-8"))
    data["stage"] = "Staging"
    version.write_text(json.dumps(data), encoding="utf-8")
    run_json = _run_dir(dst, name) / "run.json"
    data = json.loads(run_json.read_text(encoding="utf-8"))
    data["params"]["optimizer"] = "sgd"
    run_json.write_text(json.dumps(data), encoding="utf-8")
    (part,) = (run_json.parent / "metrics").glob("part-*.parquet")
    parquet = pq.ParquetFile(part)
    tables = [parquet.read_row_group(i) for i in range(parquet.num_row_groups)]
    with pq.ParquetWriter(part.with_suffix(".new"), parquet.schema_arrow) as out:
        for table in tables:
            if table.column("key")[0].as_py() == "loss":
                values = table.column("value").to_pylist()
                values[700] += 0.5
                table = table.set_column(table.schema.get_field_index("value"), "value", pa.array(values))
            out.write_table(table)
    part.with_suffix(".new").replace(part)


@pytest.fixture(scope="module")
def copied(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A sweep copied ``dir:`` -> ``dir:`` with the real engine but for its last run, one
    run damaged after."""
    tmp = tmp_path_factory.mktemp("report")
    write_sweep(tmp / "src", tmp / "files")
    src, dst = ArchiveBackend({"path": str(tmp / "src")}), ArchiveBackend({"path": str(tmp / "dst")})
    assert SyncEngine(src, dst, Options(mode="copy")).run(Selection(run_filter=RunFilter(tags={"cohort": "a"}))).ok
    damage(tmp / "dst")
    return tmp / "src", tmp / "dst"


def _check(src: Path, dst: Path, collector: ReportCollector | None) -> object:
    a, b = ArchiveBackend({"path": str(src)}), ArchiveBackend({"path": str(dst)})
    return Checker(a.reader(), b.reader(), target_of(a, b, b.writer().limits), collector=collector).check(Selection())


# -- downsampling -----------------------------------------------------------------


def test_downsampler_is_bounded_and_keeps_the_extremes() -> None:
    sampler = Downsampler()
    points = [MetricPoint(i, math.sin(i / 500), i) for i in range(300_000)]
    points[123_457] = MetricPoint(123_457, 40.0, 0)  # one spike among 300,000 points
    points[99] = MetricPoint(99, math.nan, 0)
    points[100] = MetricPoint(100, -math.inf, 0)
    for start in range(0, len(points), 7_777):  # pages of an odd size
        sampler.add(points[start:start + 7_777])
    kept = sampler.points()
    assert sampler.count == 300_000 and sampler.non_finite == 2
    assert len(kept) <= 2 * BUCKETS
    assert max(p.value for p in kept) == 40.0 and min(p.value for p in kept) == pytest.approx(-1, abs=1e-4)
    assert [p.step for p in kept] == sorted(p.step for p in kept)


def test_a_short_series_is_kept_whole() -> None:
    sampler = Downsampler()
    sampler.add([MetricPoint(i, float(i), 0) for i in range(60)])
    assert [p.step for p in sampler.points()] == list(range(60))


# -- collection during check ------------------------------------------------------


def test_collecting_changes_no_finding_and_marks_what_differs(copied: tuple[Path, Path]) -> None:
    src, dst = copied
    plain = _check(src, dst, None)
    collector = ReportCollector()
    collected = _check(src, dst, collector)
    assert [f.to_json() for f in collected.findings] == [f.to_json() for f in plain.findings]
    assert not collected.ok

    (damaged,) = [r for r in collector.runs.values() if r.finding.symbol == "*"]
    view = json.loads(damaged.view)
    assert ["optimizer", "adam", "sgd", DIFFERS] in view["param"]
    assert damaged.points == (STEPS + STEPS // 10,) * 2 and damaged.params == (3, 3)
    (loss,) = [s for s in view["series"] if s["k"] == "loss"]
    assert (loss["sc"], loss["dc"], loss["miss"], loss["extra"]) == (STEPS, STEPS, 1, 1)
    assert loss["x"][0] == [700]  # the damaged point, marked on the chart
    assert loss["d"] is not None and len(loss["s"][0]) <= 2 * BUCKETS
    equal = [r for r in collector.runs.values() if r.finding.symbol == "="]
    assert equal and all(s["d"] is None for r in equal for s in json.loads(r.view)["series"])  # drawn once when equal
    assert {m.src.name for m in collector.models} == {"churn-model"}
    (missing,) = [r for r in collector.runs.values() if r.finding.symbol == "+"]
    view = json.loads(missing.view)
    assert view["nodst"] == ["loss", "val/acc"] and ["optimizer", "adam", None, MISSING] in view["param"]


def test_registry_marks_only_what_check_compares_there() -> None:
    """A destination without stages and with an alias of its own (W&B's ``latest``): the
    stage it could not keep and that alias are not differences; a version of a run not
    checked is shown, not judged."""
    src = RegisteredModel("m", versions=[
        ModelVersion("m", "1", run_id="a", stage="Production", aliases=["champion"]),
        ModelVersion("m", "2", run_id="b")])
    dst = RegisteredModel("m", versions=[
        ModelVersion("m", "1", run_id="A", aliases=["champion", "latest"], tags={SOURCE_VERSION: "1"})])
    model = ModelData(Finding("=", "model", "model m", "m", "m"), src, dst)
    kept = registry_view(model, {"a": "A"}, stages=False, reserved_aliases=frozenset({"latest"}))["rows"]
    assert [(r["state"], r["dst"] and r["dst"][2:4]) for r in kept] == [("", ["(not kept)", "champion"]),
                                                                         ("unchecked", None)]
    staged = registry_view(model, {"a": "A"})["rows"][0]
    assert staged["state"] == "differs" and staged["bad"] == [False, False, True, True, False]


# -- the CLI and the page ---------------------------------------------------------


def _cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def pages(copied: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    src, dst = copied
    out = tmp_path_factory.mktemp("pages")
    code, output = _cli("check", f"dir:{src}", f"dir:{dst}", "--report", str(out / "check.html"))
    assert code == 1, output  # one run differs
    fresh = out / "fresh"  # a plan into an empty W&B offline folder: all would be sent, some fields kept as tags
    code, output = _cli("plan", f"dir:{src}", f"wandb-offline:{fresh}", "--report", str(out / "plan.html"))
    assert code == 0, output
    return out / "check.html", out / "plan.html"


def test_reports_are_self_contained_and_hold_no_secret(pages: tuple[Path, Path]) -> None:
    for page in pages:
        text = page.read_text(encoding="utf-8")
        assert SECRET not in text
        assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:https?:)?//""", text, re.IGNORECASE)
        assert not re.search(r"url\(\s*['\"]?(?:https?:)?//", text, re.IGNORECASE)
        assert not re.search(r"@import|<link\b|<iframe\b", text, re.IGNORECASE)
    check, plan = (p.read_text(encoding="utf-8") for p in pages)
    assert "uPlot" in check and "ada:***@git.example.com" in check
    assert "lr=0.01" in plan and "kept in tag trackbridge.source.end_time" in plan


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed: `apt-get install -y chromium` (.ci/run installs it)")
    return found


def _browse(page: Path, tmp: Path, *extra: str, fragment: str = "") -> tuple[str, list[str]]:
    """Chromium's DOM after the page's scripts ran, and every console line it logged."""
    proc = subprocess.run(
        [_chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--enable-logging=stderr", "--v=0",
         f"--user-data-dir={tmp / 'chromium-profile'}", "--no-first-run", "--disable-extensions",
         "--window-size=1280,2000", *extra, page.as_uri() + fragment],
        capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout, [line for line in proc.stderr.splitlines() if "CONSOLE" in line]


def test_check_report_in_a_real_browser(pages: tuple[Path, Path], tmp_path: Path) -> None:
    dom, console = _browse(pages[0], tmp_path, "--dump-dom")
    assert console == []  # no error, no warning, nothing logged
    summary = dom.split("<h2>Summary</h2>")[1].split("</table>")[0]
    assert '<td>runs</td><td class="num">4</td><td class="num">3</td>' in summary
    points = 3 * (STEPS + STEPS // 10)  # the missing run's series are not read
    assert f'<td>metric points</td><td class="num">{points:,}</td><td class="num">{points:,}</td>' in summary
    assert re.search(r'data-state="differs"[^>]*><summary><span class="badge differs">differs</span><b>'
                     r"churn sweep/lr=0.01</b>", dom)
    assert re.search(r'data-state="missing"[^>]*><summary><span class="badge missing">', dom)
    assert "4 of 4 shown" in dom  # the filter ran
    registry = dom.split("<h2>Registry</h2>")[1].split("<h2>")[0]
    assert '<span class="badge differs">differs</span>churn-model' in registry
    assert '<td class="val">Archived</td>' in registry and '<td class="bad val">Staging</td>' in registry
    assert dom.count('class="uplot') >= 2  # the differing run was opened and its charts drawn
    assert re.search(r'<tr class="differs"><td class="key">optimizer</td><td class="bad val">adam</td>', dom)
    assert "1 missing · 1 extra" in dom

    # the filter a person types (carried by the link here): "differs only" hides the equal runs
    dom, console = _browse(pages[0], tmp_path, "--dump-dom", fragment="#only")
    assert console == [] and "2 of 4 shown" in dom
    assert len(re.findall(r'<details class="run"[^>]*data-state="equal"[^>]*hidden', dom)) == 2
    dom, console = _browse(pages[0], tmp_path, "--dump-dom", fragment="#filter=lr%3D0.001")
    assert console == [] and "1 of 4 shown" in dom

    shot = tmp_path / "report.png"
    _browse(pages[0], tmp_path, f"--screenshot={shot}")
    assert shot.stat().st_size > 20_000  # a drawn page, not a blank one


def test_plan_report_in_a_real_browser(pages: tuple[Path, Path], tmp_path: Path) -> None:
    dom, console = _browse(pages[1], tmp_path, "--dump-dom")
    assert console == []
    assert "4 of 4 shown" in dom
    assert dom.count('<span class="badge create">create</span>') == 4
    assert "kept elsewhere" in dom
