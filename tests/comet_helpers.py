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


def sdk_archive(tmp: Path, steps: int = STEPS, env_details: bool = False) -> Path:
    """One archive written by comet_ml offline (see :data:`PARAMS` and friends); its path.

    ``env_details=True``: the SDK also collects environment details and system metrics
    (every second); its cloud-metadata probe is refused by the network guard."""
    out = tmp / "sdk-out"
    model_dir = tmp / "model-src"
    model_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "weights.bin").write_bytes(bytes(range(256)) * 4)
    (model_dir / "config.json").write_text('{"layers": 3}')
    spec = {"project": PROJECT, "workspace": WORKSPACE, "out": str(out), "name": NAME, "params": PARAMS,
            "steps": steps, "epoch_every": EPOCH_EVERY, "others": OTHERS, "labels": LABELS,
            "asset": str(tmp / "summary.txt"), "model_dir": str(model_dir)}
    script, extra = _SDK_SCRIPT, {}
    if env_details:
        script = script.replace("log_env_details=False", "log_env_details=True, log_env_cpu=True, log_env_host=True")
        script = script.replace("exp.end()", "import time; time.sleep(2.5); exp.end()")
        extra = {"COMET_SYSTEM_METRICS_INTERVAL": "1"}
    done = run_python(script, json.dumps(spec), env=child_env(tmp / "home", extra))
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


# -- a local recorder that answers what `comet upload` asks ---------------------------

import gzip  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402
from urllib.parse import parse_qs, urlparse  # noqa: E402

EXPERIMENT_ALREADY_EXISTS = 90999  # comet_ml.exceptions: the server's "key already uploaded"


class Recorder:
    """An HTTP server on 127.0.0.1 standing in for Comet's backend during ``comet upload``.

    Built from the requests the real uploader sends (comet_ml 3.58): the handshake
    ``logger/add/run`` (answered with a run id; a key seen before gets Comet's
    "already exists" error), the batch endpoints for metrics and parameters, others,
    tags, file uploads, start/stop times, status reports and model registration.
    Every request is recorded (path, query, decoded JSON body or raw bytes) so a
    test can assert what was uploaded; anything else is answered ``{}``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.keys: set[str] = set()
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _body(self) -> bytes:
                size = int(self.headers.get("Content-Length") or 0)
                data = self.rfile.read(size) if size else b""
                if self.headers.get("Content-Encoding") == "gzip":
                    data = gzip.decompress(data)
                return data

            def _answer(self, status: int, body: Any) -> None:
                binary = isinstance(body, bytes)
                raw = body if binary else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if binary else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:  # noqa: N802
                self._handle("GET")

            def do_POST(self) -> None:  # noqa: N802
                self._handle("POST")

            def do_PUT(self) -> None:  # noqa: N802
                self._handle("PUT")

            def _handle(self, method: str) -> None:
                url = urlparse(self.path)
                data = self._body()
                ctype = self.headers.get("Content-Type", "")
                body: Any = data
                if "json" in ctype or data[:1] in (b"{", b"["):
                    try:
                        body = json.loads(data)
                    except ValueError:
                        body = data
                entry = {"method": method, "path": url.path, "query": parse_qs(url.query), "body": body,
                         "content_type": ctype}
                with recorder._lock:
                    recorder.requests.append(entry)
                status, answer = recorder.answer(entry)
                self._answer(status, answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/clientlib/"

    def start(self) -> "Recorder":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, entry: dict[str, Any]) -> tuple[int, Any]:
        path = entry["path"]
        if path.endswith("/logger/add/run"):
            key = entry["body"].get("experimentKey") if isinstance(entry["body"], dict) else None
            with self._lock:
                if key in self.keys:
                    return 400, {"sdk_error_code": EXPERIMENT_ALREADY_EXISTS, "msg": "already exists"}
                self.keys.add(key)
            return 200, {"runId": f"run-{key}", "project_id": "project-1", "focusUrl": None,
                         "featureToggles": [], "s3DirectAccessEnabled": False}
        if path.endswith("/status-report/update"):
            return 200, {"is_alive_beat_duration_millis": 60_000, "gpu_monitor_interval_millis": 60_000,
                         "cpu_monitor_interval_millis": 60_000, "parameter_update_interval_millis": 60_000,
                         "pending_rpcs": False}
        if path.endswith("/isAlive/ver"):
            return 200, {"version": "3.58.8"}
        if path.endswith("/logger/get/run"):
            return 200, {"runId": "run-existing", "project_id": "project-1", "featureToggles": []}
        if path.endswith("/api/rest/v2/experiment/metadata"):
            key = (entry["query"].get("experimentKey") or [None])[0]
            if key in self.keys:
                return 200, {"experimentKey": key, "experimentName": None, "projectId": "project-1",
                             "projectName": "p", "workspaceName": "ws", "startTimeMillis": 1, "endTimeMillis": 2,
                             "running": False, "hasCrashed": False, "archived": False}
            return 400, {"msg": "Experiment not found", "code": 400, "sdk_error_code": 0}
        return 200, {}

    def bodies(self, suffix: str) -> list[Any]:
        with self._lock:
            return [r["body"] for r in self.requests if r["path"].endswith(suffix)]

    def paths(self) -> list[str]:
        with self._lock:
            return [r["path"] for r in self.requests]


def comet_upload(archive: Path, recorder: Recorder, home: Path, extra: dict[str, str] | None = None,
                 timeout: float = 300) -> subprocess.CompletedProcess:
    """The real ``comet upload`` (the SDK's CLI entry point) against the recorder."""
    env = child_env(home, {"COMET_URL_OVERRIDE": recorder.url, "COMET_API_KEY": "test-key-not-secret",
                           **(extra or {})})
    code = "import sys\nfrom comet_ml.scripts.comet import main\nmain(['upload', *sys.argv[1:]])\n"
    start = time.monotonic()
    done = run_python(code, str(archive), env=env, timeout=timeout)
    done.elapsed = time.monotonic() - start  # type: ignore[attr-defined]
    return done


def multipart_file(body: bytes) -> bytes:
    """The file part of a multipart/form-data body (what ``asset/upload`` receives)."""
    boundary = body.split(b"\r\n", 1)[0]
    part = body.split(boundary)[1]
    return part.split(b"\r\n\r\n", 1)[1].rsplit(b"\r\n", 1)[0]


def multipart_field(body: bytes, name: str) -> str | None:
    """A form field of a multipart/form-data body (the SDK sends an asset's metadata so)."""
    boundary = body.split(b"\r\n", 1)[0]
    for part in body.split(boundary)[1:]:
        head, _, value = part.partition(b"\r\n\r\n")
        if f'name="{name}"'.encode() in head:
            return value.rsplit(b"\r\n", 1)[0].decode()
    return None


def uploaded_metrics(recorder: Recorder) -> dict[str, list[tuple[int, Any, int]]]:
    """name -> [(step, value, timestamp)] of every metric the uploader sent, in order."""
    out: dict[str, list[tuple[int, Any, int]]] = {}
    for body in recorder.bodies("/batch/logger/experiment/metric"):
        for v in body["values"]:
            out.setdefault(v["metricName"], []).append((v["step"], v["metricValue"], v["timestamp"]))
    return out


# -- a local stand-in for Comet's REST API v2 (what comet_ml.API reads) -------------------

class CloudStandIn(Recorder):
    """Comet on 127.0.0.1: what the live SDK and ``comet upload`` write (the handshake,
    metric and parameter batches, others, tags, asset uploads, status reports, registry
    items) is kept per experiment, and the read API answers from it with the shapes Comet
    documents for REST v2 (https://www.comet.com/docs/v2/api-and-sdk/rest-api/read-endpoints/):
    projects, experiments, metadata, parameters, others, tags, metric summaries, full
    metric histories, assets (bytes), models, registry models and versions.

    ``experiment``: one experiment to start with (same keys as an entry of
    :attr:`experiments`; its ``registry`` list seeds :attr:`registry`)."""

    WORKSPACE = "ws"

    def __init__(self, experiment: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.experiments: dict[str, dict[str, Any]] = {}
        self.registry: list[dict[str, Any]] = []
        if experiment is not None:
            exp = {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v)
                   for k, v in experiment.items()}
            self.registry = [dict(r, versions=[{"experimentKey": exp["key"], **v} for v in r["versions"]])
                             for r in exp.pop("registry", [])]
            self.experiments[exp["key"]] = exp
            self.keys.add(exp["key"])

    # -- writes ------------------------------------------------------------------

    def _new(self, body: dict[str, Any]) -> None:
        key = body["experimentKey"]
        self.experiments[key] = {
            "key": key, "name": None, "workspace": body.get("teamName") or self.WORKSPACE,
            "project": body.get("projectName") or "general", "start": body.get("local_timestamp"), "end": None,
            "running": True, "params": {}, "others": {}, "tags": [], "metrics": {}, "assets": []}

    def _write(self, path: str, q: dict[str, str], body: Any) -> None:
        b = body if isinstance(body, dict) else {}
        e = self.experiments.get(b.get("experimentKey") or q.get("experimentId") or q.get("experimentKey") or "")
        if e is None:
            return
        if path.endswith("/batch/logger/experiment/metric"):
            for v in b["values"]:
                e["metrics"].setdefault(v["metricName"], []).append((v["step"], v["metricValue"], v["timestamp"]))
        elif path.endswith("/batch/logger/experiment/parameter"):
            for v in b["values"]:
                e["params"][v["parameterName"]] = v["parameterValue"]
        elif path.endswith("/write/experiment/log-other"):
            e["others"][b["key"]] = b["value"]
            if b["key"] == "Name":
                e["name"] = b["value"]
        elif path.endswith("/tags/add-tags-to-experiment") or path.endswith("/write/experiment/tags"):
            e["tags"] += [t for t in b.get("addedTags") or [] if t not in e["tags"]]
        elif path.endswith("/status-report/update") and b.get("is_alive") is False:
            e["running"], e["end"] = False, b.get("local_timestamp")
        elif path.endswith("/status-report/offline-metadata"):
            e["start"], e["end"], e["running"] = b.get("startTimestamp") or e["start"], b.get("endTimestamp"), False
        elif path.endswith("/asset/upload"):
            metadata = json.loads(multipart_field(body, "metadata") or "{}")
            if q.get("groupingName"):
                metadata["groupingName"] = q["groupingName"]
            e["assets"].append({"fileName": q.get("fileName"), "assetId": q.get("assetId"),
                                "type": q.get("type") or "asset", "data": multipart_file(body),
                                "metadata": metadata or None})

    # -- the API ---------------------------------------------------------------------

    def answer(self, entry: dict[str, Any]) -> tuple[int, Any]:
        path, q = entry["path"], {k: v[0] for k, v in entry["query"].items()}
        body = entry["body"]
        with self._lock:
            if path.endswith("/logger/add/run") and isinstance(body, dict) and body.get("experimentKey") not in self.keys:
                self._new(body)
            elif entry["method"] == "POST":
                self._write(path, q, body)
        rest = path.split("/api/rest/v2/", 1)[-1] if "/api/rest/v2/" in path else None
        if rest is None or rest in ("write/experiment/log-other", "write/experiment/tags"):
            return super().answer(entry)
        with self._lock:
            return self._read(rest, q, body)

    def _read(self, rest: str, q: dict[str, str], body: Any) -> tuple[int, Any]:
        key = q.get("experimentKey")
        e = self.experiments.get(key) if key else None
        if rest.startswith("experiment/") and e is None:
            return 400, {"msg": "Experiment not found", "code": 400, "sdk_error_code": 0}
        if rest == "account-details":
            return 200, {"userName": "ada", "defaultWorkspaceName": self.WORKSPACE}
        if rest == "workspaces":
            return 200, {"workspaceNames": [self.WORKSPACE]}
        if rest == "projects":
            names = sorted({x["project"] for x in self.experiments.values()})
            return 200, {"projects": [{"projectId": f"project-{n}", "projectName": n, "workspaceName": self.WORKSPACE,
                                       "ownerUserName": "ada", "projectDescription": "", "isPublic": False,
                                       "numberOfExperiments": 1, "lastUpdated": 0} for n in names]}
        if rest in ("experiments", "experiments/metadata"):
            wanted = q.get("projectName")
            return 200, {"experiments": [self._metadata(x) for x in self.experiments.values()
                                         if wanted in (None, x["project"])]}
        if rest == "experiment/metadata":
            return 200, self._metadata(e)
        if rest == "experiment/parameters":
            return 200, {"values": [{"name": k, "valueCurrent": _text(v), "valueMax": _text(v), "valueMin": _text(v),
                                     "timestampCurrent": e["start"], "editable": False}
                                    for k, v in e["params"].items()]}
        if rest == "experiment/log-other":
            return 200, {"logOtherList": [], "values": [
                {"name": k, "valueCurrent": _text(v), "valueMax": _text(v), "valueMin": _text(v),
                 "timestampCurrent": e["start"], "editable": False} for k, v in e["others"].items()]}
        if rest == "experiment/tags":
            return 200, {"tags": list(e["tags"])}
        if rest == "experiment/metrics/summary":
            return 200, {"values": [{"name": k, "valueCurrent": _text(pts[-1][1]), "stepCurrent": pts[-1][0],
                                     "timestampCurrent": pts[-1][2], "editable": False}
                                    for k, pts in e["metrics"].items()]}
        if rest == "experiment/metrics/get-metric":
            name = q["metricName"]
            return 200, {"experimentKey": key, "metricName": name, "metrics": [
                {"metricName": name, "metricValue": _text(v), "timestamp": t, "step": s, "epoch": None,
                 "runContext": None, "offset": i} for i, (s, v, t) in enumerate(e["metrics"].get(name, []))]}
        if rest == "experiment/asset/list":
            return 200, {"assets": [{"fileName": a["fileName"], "fileSize": len(a["data"]), "assetId": a["assetId"],
                                     "type": a["type"], "remote": False, "metadata": a.get("metadata"),
                                     "step": None, "runContext": None, "createdAt": e["start"]}
                                    for a in e["assets"]]}
        if rest == "experiment/asset/get-asset":
            return 200, next(a["data"] for a in e["assets"] if a["assetId"] == q["assetId"])
        if rest == "experiment/model":
            names = sorted({a["metadata"]["groupingName"] for a in e["assets"] if a["type"] == "model-element"})
            return 200, {"models": [{"experimentModelId": f"m-{n}", "experimentKey": key, "modelName": n,
                                     "numberOfAssets": 1} for n in names]}
        if rest == "write/registry-model/item/create" and isinstance(body, dict):
            reg = next((r for r in self.registry if r["name"] == body["registryModelName"]), None)
            if reg is None:
                reg = {"name": body["registryModelName"], "description": body.get("registryModelDescription") or "",
                       "versions": []}
                self.registry.append(reg)
            reg["versions"].append({"version": body["version"], "comment": body.get("versionComment") or "",
                                    "status": body.get("status"), "tags": list(body.get("tags") or []),
                                    "model": body["experimentModelName"], "experimentKey": body["experimentKey"]})
            return 200, {"registryModelId": "rm-1", "registryModelItemId": f"i-{body['version']}"}
        if rest == "registry-model/compact-details":
            return 200, {"registryModelId": "rm-1", "modelName": q.get("modelName")}
        if rest == "write/registry-model/item/stage":
            for r in self.registry:
                for v in r["versions"]:
                    if f"i-{v['version']}" == q.get("modelItemId") and q.get("stage") not in v["tags"]:
                        v["tags"].append(q["stage"])
            return 200, {}
        if rest == "registry-model/item/details":
            r = next((r for r in self.registry if r["name"] == q.get("modelName")), None)
            v = next((v for v in (r or {}).get("versions", []) if v["version"] == q.get("version")), None)
            if v is None:
                return 400, {"msg": "not found", "code": 400, "sdk_error_code": 0}
            return 200, {"registryModelItemId": f"i-{r['name']}-{v['version']}", "version": v["version"],
                         "status": v["status"], "tags": v["tags"], "comment": v["comment"],
                         "experimentKey": v.get("experimentKey")}
        if rest == "write/registry-model/item/status" and isinstance(body, dict):
            for r in self.registry:
                for v in r["versions"]:
                    if f"i-{r['name']}-{v['version']}" == body.get("modelItemId"):
                        v["status"] = body.get("status")
            return 200, {}
        if rest == "registry-model":
            return 200, {"registryModels": [{"registryModelId": "rm-1", "modelName": r["name"],
                                             "workspaceId": "w-1", "isPublic": False} for r in self.registry]}
        if rest == "registry-model/details":
            r = next((r for r in self.registry if r["name"] == q["modelName"]), None)
            if r is None:
                return 400, {"msg": "not found", "code": 400, "sdk_error_code": 0}
            return 200, {"registryModelId": "rm-1", "modelName": r["name"], "description": r["description"],
                         "isPublic": False, "versions": [
                             {"registryModelItemId": f"i-{v['version']}", "version": v["version"],
                              "comment": v["comment"], "status": v["status"], "tags": v["tags"], "createdAt": 0,
                              "experimentModel": {"experimentModelId": f"m-{v['model']}",
                                                  "experimentModelName": v["model"],
                                                  "experimentKey": v.get("experimentKey")}}
                             for v in r["versions"]]}
        return 200, {}

    def _metadata(self, e: dict[str, Any]) -> dict[str, Any]:
        return {"experimentKey": e["key"], "experimentName": e["name"], "projectId": f"project-{e['project']}",
                "projectName": e["project"], "workspaceName": e["workspace"], "startTimeMillis": e["start"],
                "endTimeMillis": e["end"], "durationMillis": (e["end"] or e["start"] or 0) - (e["start"] or 0),
                "running": bool(e.get("running")), "hasCrashed": False, "archived": False, "optimizationId": None,
                "fileName": None, "filePath": None}


def _text(value: Any) -> str:
    """Comet's read API gives parameter, other and metric values as text."""
    if isinstance(value, str):
        return value
    return json.dumps(value) if isinstance(value, (bool, list, dict)) or value is None else repr(value)
