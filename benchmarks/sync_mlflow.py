"""Benchmark: moving an MLflow experiment between two MLflow servers.

    .venv/bin/python benchmarks/sync_mlflow.py            # full size: 50 runs x 5 metrics x 2,000 steps
    .venv/bin/python benchmarks/sync_mlflow.py --small    # smoke run: 5 runs x 200 steps

One command, in one run: starts real ``mlflow server`` processes on 127.0.0.1
(tests/servers.py, sqlite stores, one worker each), builds the corpus on server A
with the plain MlflowClient (not timed), then times, each as a subprocess:

  (a) mlflow-migration (MLflow's export/import tool; own Python 3.12 venv under
      benchmarks/_work/peer-venv, created on first use): export A -> folder,
      import -> fresh server B, and a second import (are runs duplicated?)
  (b) trackbridge copy A:<exp> C:<exp>           (fresh server C)
  (c) trackbridge sync A:<exp> C:<exp>           (nothing changed)
  (f) trackbridge copy from A's sqlite file (no REST on the read side; A's proxied
      artifacts read from its --artifacts-destination folder) to a fresh embedded
      sqlite store (no REST on the write side); server A idle
  (d) trackbridge sync after 1 new run + 100 new points on each of 5 runs in A
      then trackbridge check A:<exp> C:<exp>  (pass/fail)
  (e) the raw limit: bare MlflowClient, 8 threads: read alone (get_metric_history),
      write alone (log_batch of 1000 to a fresh server D), and a concurrent
      read->write pipeline (fresh server D')

Prints a table (wall time, points/s, peak RSS) and ratios with targets, and
writes benchmarks/results/sync_mlflow-<date>[-small].json. Work data goes to
benchmarks/_work/run-<timestamp>/ (removed at the end unless --keep; logs kept).
"""
from __future__ import annotations

import argparse
import datetime as dt
import importlib.util
import json
import os
import platform
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
_WE_SUPPRESS_URLS = "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT" not in os.environ
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # corpus building: no "View run" lines

import _measure  # noqa: E402
from _corpus import CorpusSpec, build, mutate  # noqa: E402


def _load_servers():
    spec = importlib.util.spec_from_file_location("tb_test_servers", REPO / "tests" / "servers.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


servers = _load_servers()

PEER_VENV = HERE / "_work" / "peer-venv"
PEER_REQUIREMENT = "mlflow-migration>=1.2,<1.3"
DEFAULT_PEER_PYTHON = "/root/.pyenv/versions/3.12.1/bin/python"
TARGETS = {"b/e": ("<=", 1.2), "a/b": (">=", 1.4), "c/b": ("<=", 0.05)}
RSS_TARGET_MB = 300.0


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


# ---------------------------------------------------------------- peer tool


def _find_peer_python(explicit: str | None) -> str:
    candidates = [explicit] if explicit else [DEFAULT_PEER_PYTHON, shutil.which("python3.13"), shutil.which("python3.12")]
    for c in candidates:
        if not c or not Path(c).exists():
            continue
        out = subprocess.run([c, "-c", "import sys; print(sys.version_info >= (3, 12))"], capture_output=True, text=True)
        if out.stdout.strip() == "True":
            return c
    raise SystemExit("mlflow-migration needs Python >= 3.12: pass --peer-python /path/to/python3.12")


def ensure_peer_venv(peer_python: str | None) -> dict:
    """Create benchmarks/_work/peer-venv with mlflow-migration if missing; return
    its version and the export/import-experiment entry points found in the package."""
    py = PEER_VENV / "bin" / "python"
    if not py.exists():
        base = _find_peer_python(peer_python)
        log(f"peer venv missing: creating {PEER_VENV} with {base} and pip install '{PEER_REQUIREMENT}' (once)")
        subprocess.run([base, "-m", "venv", str(PEER_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", PEER_REQUIREMENT], check=True)
    probe = (
        "import json; from importlib.metadata import distribution as d\n"
        "dist = d('mlflow-migration')\n"
        "eps = {e.name: e.value for e in dist.entry_points if e.group == 'console_scripts'}\n"
        "def v(n):\n"
        "    try: return d(n).version\n"
        "    except Exception: return None\n"
        "print(json.dumps({'version': dist.version, 'python': __import__('sys').version.split()[0],\n"
        "                  'mlflow': v('mlflow') or v('mlflow-skinny'), 'entry_points': eps}))"
    )
    out = subprocess.run([str(py), "-c", probe], capture_output=True, text=True, check=True)
    info = json.loads(out.stdout)
    eps = info["entry_points"]
    export = [n for n in eps if n.endswith("export-experiment")]
    imp = [n for n in eps if n.endswith("import-experiment")]
    if len(export) != 1 or len(imp) != 1:
        raise SystemExit(f"cannot find export/import-experiment entry points in mlflow-migration: {sorted(eps)}")
    info["export_cmd"] = str(PEER_VENV / "bin" / export[0])
    info["import_cmd"] = str(PEER_VENV / "bin" / imp[0])
    return info


# ---------------------------------------------------------------- counting (straight from sqlite)


def count_store(db: Path, experiment: str) -> dict:
    """Runs and metric rows of an experiment, read from the store's sqlite file
    (read-only, no REST): an independent check of what each tool wrote."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=30)
    try:
        row = con.execute("SELECT experiment_id FROM experiments WHERE name = ? AND lifecycle_stage = 'active'",
                          (experiment,)).fetchone()
        if row is None:
            return {"runs": 0, "metric_points": 0, "params": 0}
        exp_id = row[0]
        q = "SELECT COUNT(*) FROM {t} x JOIN runs r ON r.run_uuid = x.run_uuid WHERE r.experiment_id = ? AND r.lifecycle_stage = 'active'"
        runs = con.execute("SELECT COUNT(*) FROM runs WHERE experiment_id = ? AND lifecycle_stage = 'active'",
                           (exp_id,)).fetchone()[0]
        return {"runs": runs,
                "metric_points": con.execute(q.format(t="metrics"), (exp_id,)).fetchone()[0],
                "params": con.execute(q.format(t="params"), (exp_id,)).fetchone()[0]}
    finally:
        con.close()


# ---------------------------------------------------------------- trackbridge CLI


def trackbridge_bin() -> str:
    return str(Path(sys.executable).with_name("trackbridge"))


def trackbridge_has(command: str) -> bool:
    out = subprocess.run([trackbridge_bin(), command, "--help"], capture_output=True, text=True)
    return out.returncode == 0


def remote_env(remotes: dict[str, str], extra: dict | None = None) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRACKBRIDGE_REMOTE_")}
    env.pop("MLFLOW_TRACKING_URI", None)
    if _WE_SUPPRESS_URLS:  # trackbridge runs with the user's environment, not ours
        env.pop("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", None)
    env.update(MLFLOW_DISABLE_TELEMETRY="true", PYTHONUNBUFFERED="1")
    for name, uri in remotes.items():
        env[f"TRACKBRIDGE_REMOTE_{name}_BACKEND"] = "mlflow"
        env[f"TRACKBRIDGE_REMOTE_{name}_TRACKING_URI"] = uri
    env.update(extra or {})
    return env


# ---------------------------------------------------------------- the run


class Bench:
    def __init__(self, args):
        self.args = args
        self.spec = CorpusSpec(runs=args.runs, steps=args.steps, params=args.params, tags=args.tags,
                               metrics=args.metrics)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.work = HERE / "_work" / f"run-{stamp}"
        self.logs = self.work / "logs"
        self.servers: list = []
        self.rows: dict[str, dict] = {}
        self.notes: list[str] = []

    def server(self, name: str):
        s = servers.MlflowServer(self.work / name, workers=1)
        t0 = time.perf_counter()
        s.start()
        self.servers.append(s)
        log(f"server {name} up at {s.url} ({time.perf_counter() - t0:.0f} s)")
        return s

    def stop(self, s) -> None:
        s.stop()
        self.servers.remove(s)

    def measure(self, key: str, label: str, cmd: list[str], *, env=None, cwd=None, points=None, **extra) -> dict:
        log(f"{key}: {label} ...")
        cpu0 = {id(s): _measure.tree_cpu_s(s.proc.pid) for s in self.servers if s.proc}
        r = _measure.run(cmd, env=env, cwd=cwd, log=self.logs / f"{key.replace('/', '_')}.log",
                         timeout=self.args.timeout)
        r["server_cpu_s"] = round(sum(_measure.tree_cpu_s(s.proc.pid) - cpu0[id(s)]
                                      for s in self.servers if s.proc and id(s) in cpu0), 1)
        r["load1_after"] = round(os.getloadavg()[0], 2)
        r.update(label=label, points=points, **extra)
        status = "ok" if r["rc"] == 0 else ("TIMEOUT" if r["timed_out"] else f"rc={r['rc']}")
        log(f"{key}: {status} in {r['wall_s']:.1f} s, tree peak {r['tree_peak_mb']:.0f} MB, "
            f"largest process {r['hiwater_mb']:.0f} MB, CPU {r['cpu_s'] or 0:.0f} s + servers {r['server_cpu_s']:.0f} s, "
            f"load {r['load1_after']:.1f}")
        if r["rc"] != 0:
            log(f"{key}: stderr tail:\n{r['stderr_tail'][-1500:]}")
        self.rows[key] = r
        return r

    def na(self, key: str, label: str, why: str) -> None:
        self.rows[key] = {"label": label, "rc": None, "na": why}
        log(f"{key}: n/a ({why})")

    # -- (a) ------------------------------------------------------------------
    def peer(self, a) -> None:
        exp = self.spec.experiment
        try:
            info = ensure_peer_venv(self.args.peer_python)
        except (subprocess.CalledProcessError, SystemExit) as exc:
            for k in ("a.export", "a.import", "a.import2"):
                self.na(k, "mlflow-migration", f"peer venv unavailable: {exc}")
            return
        self.peer_info = info
        b = self.server("B")
        try:
            export_dir = self.work / "export"
            env = {**os.environ, "MLFLOW_TRACKING_URI": a.url, "MLFLOW_DISABLE_TELEMETRY": "true"}
            self.measure("a.export", f"mlflow-migration {info['version']}: export A -> folder",
                         [info["export_cmd"], "--experiment", exp, "--output-dir", str(export_dir)],
                         env=env, cwd=self.work, points=self.spec.points)
            env["MLFLOW_TRACKING_URI"] = b.url
            r = self.measure("a.import", f"mlflow-migration {info['version']}: import folder -> B",
                             [info["import_cmd"], "--experiment-name", exp, "--input-dir", str(export_dir)],
                             env=env, cwd=self.work, points=self.spec.points)
            r["dest"] = count_store(b.root / "mlflow.db", exp)
            r2 = self.measure("a.import2", "mlflow-migration: same import again -> B",
                              [info["import_cmd"], "--experiment-name", exp, "--input-dir", str(export_dir)],
                              env=env, cwd=self.work, points=self.spec.points)
            r2["dest"] = count_store(b.root / "mlflow.db", exp)
            dup = r2["dest"]["runs"] - r["dest"]["runs"]
            r2["duplicated_runs"] = dup
            log(f"a: runs in B after 1st import {r['dest']['runs']}, after 2nd {r2['dest']['runs']} "
                f"({'DUPLICATED ' + str(dup) if dup else 'no duplicates'})")
        finally:
            self.stop(b)

    # -- (e) ------------------------------------------------------------------
    def raw(self, a) -> None:
        py, raw = sys.executable, str(HERE / "_raw.py")
        t = str(self.args.threads)
        exp = self.spec.experiment
        dims = ["--runs", str(self.spec.runs), "--metrics", str(self.spec.metrics), "--steps", str(self.spec.steps)]
        env = {**os.environ, "MLFLOW_DISABLE_TELEMETRY": "true"}

        def parse(r):
            try:
                inner = json.loads(r["stdout"].strip().splitlines()[-1])
                r["inner_s"] = round(inner["seconds"], 2)
                r["points"] = inner["points"]
            except (IndexError, ValueError, KeyError):
                pass

        parse(self.measure("e.read", f"raw read alone: get_metric_history, {t} threads",
                           [py, raw, "read", "--src", a.url, "--experiment", exp, "--threads", t], env=env))
        d = self.server("D")
        try:
            parse(self.measure("e.write", f"raw write alone: log_batch(1000) -> D, {t} threads",
                               [py, raw, "write", "--dst", d.url, "--threads", t, *dims], env=env))
        finally:
            self.stop(d)
        d2 = self.server("D2")
        try:
            parse(self.measure("e", f"raw read+write pipeline A -> D', {t}+{t} threads",
                               [py, raw, "pipeline", "--src", a.url, "--dst", d2.url, "--experiment", exp,
                                "--threads", t], env=env))
        finally:
            self.stop(d2)

    # -- (b) (c) (d) (f) + check ------------------------------------------------
    def trackbridge(self, a) -> None:
        exp = self.spec.experiment
        tb = trackbridge_bin()
        have = {c: trackbridge_has(c) for c in ("copy", "sync", "check")}
        if not have["copy"]:
            for k, label in (("b", "trackbridge copy"), ("c", "trackbridge sync (no change)"),
                             ("f", "trackbridge copy sqlite -> sqlite"),
                             ("d", "trackbridge sync (1 new run + 500 points)"), ("check", "trackbridge check")):
                self.na(k, label, "`trackbridge copy` is not available in this checkout")
            return
        c = self.server("C")
        tbdir = self.work / "tb"
        tbdir.mkdir()
        env = remote_env({"A": a.url, "C": c.url})
        src, dst = f"A:{exp}", f"C:{exp}"
        extra = self.args.tb_args
        self.tb_measure("b", "trackbridge copy A -> C", [tb, "copy", src, dst, *extra], env=env, cwd=tbdir,
                        points=self.spec.points, db=c.root / "mlflow.db")
        if have["sync"]:
            self.tb_measure("c", "trackbridge sync A -> C (nothing changed)", [tb, "sync", src, dst, *extra],
                            env=env, cwd=tbdir, points=0, db=c.root / "mlflow.db")
        else:
            self.na("c", "trackbridge sync (no change)", "`trackbridge sync` not available")

        # (f) sqlite file of A -> fresh embedded sqlite store; server A idle. A's runs have
        # mlflow-artifacts:/ URIs: the remote maps them to A's --artifacts-destination folder.
        fdir = self.work / "F"
        fdir.mkdir()
        fenv = remote_env({"SA": f"sqlite:///{a.root / 'mlflow.db'}", "F": f"sqlite:///{fdir / 'mlflow.db'}"},
                          {"TRACKBRIDGE_REMOTE_SA_ARTIFACTS_DESTINATION": str(a.root / "artifacts")})
        self.tb_measure("f", "trackbridge copy A's sqlite -> sqlite (no REST)",
                        [tb, "copy", f"SA:{exp}", f"F:{exp}", *extra], env=fenv, cwd=fdir,
                        points=self.spec.points, db=fdir / "mlflow.db")
        if have["sync"]:
            log("d: adding 1 new run and 100 new points on each of 5 runs in A (not timed)")
            ch = mutate(a.url, self.spec, self.run_ids)
            self.change = ch
            r = self.tb_measure("d", "trackbridge sync A -> C (1 new run, +100 points x 5 runs)",
                                [tb, "sync", src, dst, *extra], env=env, cwd=tbdir,
                                points=ch["points_on_existing_runs"] + ch["points_in_new_run"],
                                db=c.root / "mlflow.db")
            r["source"] = count_store(a.root / "mlflow.db", exp)
        else:
            self.na("d", "trackbridge sync (changes)", "`trackbridge sync` not available")
        if have["check"]:
            r = self.measure("check", "trackbridge check A vs C", [tb, "check", src, dst], env=env, cwd=tbdir)
            r["passed"] = r["rc"] == 0
        else:
            self.na("check", "trackbridge check", "`trackbridge check` not available")

    def tb_measure(self, key, label, cmd, *, db: Path, **kw) -> dict:
        """A trackbridge copy/sync step: run with --json, keep its own stats, count the destination."""
        r = self.measure(key, label, [*cmd, "--json"], **kw)
        r["tb_stats"] = _json_tail(r["stdout"]).get("stats")
        if r["tb_stats"]:
            r["inner_s"] = r["tb_stats"].get("elapsed_s") or r["tb_stats"].get("elapsed s")
        if db.exists():
            r["dest"] = count_store(db, self.spec.experiment)
        return r

    # -- all ------------------------------------------------------------------
    def run(self) -> dict:
        self.work.mkdir(parents=True)
        log(f"work dir {self.work}")
        started = dt.datetime.now(dt.timezone.utc)
        load0 = os.getloadavg()
        try:
            a = self.server("A")
            log(f"building corpus on A: {self.spec.runs} runs x ({self.spec.params} params, {self.spec.tags} tags, "
                f"{self.spec.metrics} metrics x {self.spec.steps} steps, 3 artifacts) = {self.spec.points:,} points")
            corpus = build(a.url, self.spec, threads=self.args.threads, log=log)
            self.run_ids = corpus["run_ids"]
            self.corpus_counts = count_store(a.root / "mlflow.db", self.spec.experiment)
            log(f"corpus built in {corpus['seconds']:.0f} s (not timed): {self.corpus_counts}")
            if not self.args.skip_peer:
                self.peer(a)
            if not self.args.skip_raw:
                self.raw(a)
            if not self.args.skip_trackbridge:
                self.trackbridge(a)
        finally:
            for s in list(self.servers):
                s.stop()
        return self.report(started, load0, corpus)

    # -- report ---------------------------------------------------------------
    def report(self, started, load0, corpus) -> dict:
        rows = self.rows

        def wall(k):
            r = rows.get(k)
            return r["wall_s"] if r and r.get("rc") == 0 else None

        a = wall("a.export") + wall("a.import") if wall("a.export") and wall("a.import") else None
        b, c, e = wall("b"), wall("c"), wall("e")
        ratios = {
            "a/b": a / b if a and b else None,
            "b/e": b / e if b and e else None,
            "c/b": c / b if c is not None and b else None,
        }
        checks = {}
        for name, (op, target) in TARGETS.items():
            v = ratios[name]
            checks[name] = None if v is None else (v <= target if op == "<=" else v >= target)
        for k in ("b", "c", "d", "f", "check"):
            r = rows.get(k)
            if r and r.get("rc") == 0:
                peak = max(r["tree_peak_mb"], r["hiwater_mb"])
                checks[f"rss:{k}"] = peak <= RSS_TARGET_MB

        # ---- print
        print()
        print(f"Corpus: {self.spec.runs} runs x ({self.spec.params} params, {self.spec.tags} tags, "
              f"{self.spec.metrics} metrics x {self.spec.steps} steps, artifacts {self.spec.artifact_sizes} B) "
              f"= {self.spec.points:,} points; build {corpus['seconds']:.0f} s (not timed)")
        hdr = (f"{'':9} {'step':58} {'wall s':>8} {'inner s':>8} {'points/s':>9} {'tree MB':>8} {'proc MB':>8}"
               f" {'cpu s':>6} {'srv cpu':>7} {'load':>5}  result")
        print(hdr)
        print("-" * len(hdr))
        order = ["a.export", "a.import", "a.import2", "b", "c", "f", "d", "check", "e.read", "e.write", "e"]
        for k in order:
            r = rows.get(k)
            if r is None:
                continue
            if "na" in r:
                print(f"{k:9} {r['label'][:58]:58} {'n/a':>8} {'':8} {'':9} {'':8} {'':8} {'':6} {'':7} {'':5}  {r['na']}")
                continue
            pts = r.get("points")
            timed = r.get("inner_s") or r["wall_s"]
            rate = f"{pts / timed:,.0f}" if pts and r["rc"] == 0 else ""
            res = "ok" if r["rc"] == 0 else ("TIMEOUT" if r.get("timed_out") else f"FAILED rc={r['rc']}")
            if r["rc"] != 0:
                errs = [ln for ln in r.get("stderr_tail", "").splitlines() if ln.startswith("error")]
                if errs:
                    res += f" ({errs[-1][:110]})"
            if "dest" in r:
                res += f"; dest runs={r['dest']['runs']} points={r['dest']['metric_points']:,}"
            if "duplicated_runs" in r:
                res += f"; duplicated {r['duplicated_runs']} runs" if r["duplicated_runs"] else "; no duplicates"
            if k == "check":
                res = "PASS" if r["rc"] == 0 else f"FAIL (rc={r['rc']})"
            inner = f"{r['inner_s']:.1f}" if r.get("inner_s") is not None else ""
            cpu = f"{r['cpu_s']:.0f}" if r.get("cpu_s") is not None else ""
            print(f"{k:9} {r['label'][:58]:58} {r['wall_s']:8.1f} {inner:>8} {rate:>9} "
                  f"{r['tree_peak_mb']:8.0f} {r['hiwater_mb']:8.0f} {cpu:>6} {r['server_cpu_s']:7.0f} "
                  f"{r['load1_after']:5.1f}  {res}")
        if a:
            print(f"{'a':9} {'mlflow-migration export + import':58} {a:8.1f}")
        print()
        print("wall s: subprocess wall time incl. interpreter start-up and imports (ratios use it).")
        print("inner s: the timed section inside the raw-limit process, or trackbridge's own elapsed_s")
        print("(--json stats); points/s uses inner s when there is one.")
        print("tree MB: max over 0.1 s psutil samples of the summed RSS of the process tree;")
        print("proc MB: kernel ru_maxrss (wait4) of the largest single process in the tree.")
        print("cpu s: user+sys CPU of the command's process tree; srv cpu: CPU used meanwhile by the")
        print("benchmark's mlflow servers; load: 1-min load average when the step ended (2 cores shared).")
        print()
        for name, (op, target) in TARGETS.items():
            v = ratios[name]
            verdict = "n/a" if v is None else ("PASS" if checks[name] else "FAIL")
            print(f"  {name:5} = {'n/a' if v is None else f'{v:.3f}':>6}   target {op} {target:<5} {verdict}")
        for k in ("b", "c", "d", "f", "check"):
            if f"rss:{k}" in checks:
                r = rows[k]
                peak = max(r["tree_peak_mb"], r["hiwater_mb"])
                print(f"  peak RSS {k:5} = {peak:6.0f} MB  target <= {RSS_TARGET_MB:.0f}  "
                      f"{'PASS' if checks[f'rss:{k}'] else 'FAIL'}")
        if not any(k.startswith("rss:") for k in checks):
            print(f"  peak RSS (trackbridge) n/a   target <= {RSS_TARGET_MB:.0f}")
        load1 = os.getloadavg()
        print(f"\nload average at start {load0[0]:.1f}, at end {load1[0]:.1f} ({os.cpu_count()} CPUs)")

        # ---- json
        result = {
            "benchmark": "sync_mlflow",
            "started_utc": started.isoformat(timespec="seconds"),
            "finished_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                        "loadavg_start": load0, "loadavg_end": load1},
            "versions": {"python": platform.python_version(), "mlflow": _version("mlflow"),
                         "trackbridge": _version("trackbridge"), "git": _git_head(),
                         "peer": getattr(self, "peer_info", {}).get("version"),
                         "peer_python": getattr(self, "peer_info", {}).get("python")},
            "corpus": self.spec.as_dict() | {"build_s": round(corpus["seconds"], 1), "counts": self.corpus_counts},
            "threads": self.args.threads,
            "change_set": getattr(self, "change", None) and {k: v for k, v in self.change.items() if k != "touched_runs"},
            "steps": {k: {kk: vv for kk, vv in r.items() if kk not in ("stdout",)} for k, r in rows.items()},
            "a_total_s": a,
            "ratios": ratios,
            "targets": {**{k: f"{op} {t}" for k, (op, t) in TARGETS.items()}, "peak_rss_mb": f"<= {RSS_TARGET_MB}"},
            "checks": checks,
            "work_dir": str(self.work),
        }
        out = Path(self.args.out) if self.args.out else (
            HERE / "results" / f"sync_mlflow-{dt.date.today().isoformat()}{'-small' if self.args.small else ''}.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, default=str) + "\n")
        print(f"results: {out}")
        return result


def _json_tail(text: str) -> dict:
    """The JSON document trackbridge --json printed (MLflow may print lines before it)."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("{"):
            try:
                return json.loads("\n".join(lines[i:]))
            except ValueError:
                continue
    return {}


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def _git_head() -> str | None:
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--params", type=int, default=20)
    ap.add_argument("--tags", type=int, default=5)
    ap.add_argument("--metrics", type=int, default=5)
    ap.add_argument("--threads", type=int, default=8, help="threads for corpus building and the raw limit (8)")
    ap.add_argument("--small", action="store_true", help="smoke run: 5 runs x 200 steps")
    ap.add_argument("--skip-peer", action="store_true", help="skip (a) mlflow-migration")
    ap.add_argument("--skip-raw", action="store_true", help="skip (e) the raw limit")
    ap.add_argument("--skip-trackbridge", action="store_true", help="skip (b), (c), (d), (f) and check")
    ap.add_argument("--peer-python", help="Python >= 3.12 for the mlflow-migration venv (default: pyenv 3.12.1)")
    ap.add_argument("--tb-args", nargs=argparse.REMAINDER, default=[],
                    help="extra arguments passed to trackbridge copy/sync (must be last)")
    ap.add_argument("--timeout", type=float, default=3600, help="per-step timeout in seconds")
    ap.add_argument("--out", help="results JSON path (default benchmarks/results/sync_mlflow-<date>.json)")
    ap.add_argument("--keep", action="store_true", help="keep the servers' data under benchmarks/_work/run-*")
    args = ap.parse_args()
    if args.small:
        args.runs, args.steps = 5, 200
    bench = Bench(args)
    try:
        bench.run()
    finally:
        if not args.keep and bench.work.exists():
            for f in bench.work.rglob("*"):
                if (f.is_file() or f.is_symlink()) and f.suffix not in (".log", ".err"):
                    f.unlink()
            for d in sorted((d for d in bench.work.rglob("*") if d.is_dir()), key=lambda d: -len(d.parts)):
                if not any(d.iterdir()):
                    d.rmdir()
            log(f"removed store data under {bench.work} (logs kept; --keep to keep everything)")


if __name__ == "__main__":
    main()
