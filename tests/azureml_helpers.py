"""Azure ML stand-ins for tests: a real ``mlflow server`` under Azure's URL prefix,
and a small proxy in front of it that enforces Azure ML's documented limits.

Why a proxy and not a mock: the real ``azureml-mlflow`` plugin talks to a real
MLflow server, exactly as it talks to a workspace (same paths, same JSON, a
bearer token per request).  The proxy only *refuses* what Azure refuses, with
Azure-shaped errors, so a writer that breaks a limit fails the test instead of
passing against a permissive stand-in:

* ``runs/log-batch`` with more than 250 metrics (``MetricV2Dto ... Limit=250``);
* a tag write that would give a run more than 50 tags (counted on the server);
* a tag key over 100 or a value over 1,000 characters;
* ``metrics/get-history`` with ``max_results`` >= 1000 (or none: Azure's default is refused);
* an ``mlflow.source.*`` tag in ``runs/create`` (Azure drops them silently there);
* any write of ``mlflow.user`` (Azure sets it itself);
* a request without ``Authorization: Bearer <token>``.

It can also answer 429/503 a given number of times (throttling), refuse the
alias API (``aliases=False``) like a registry without aliases, and the MLflow 3
logged-model API (``logged_models=False``) like a workspace without it.  Every request is
recorded (method, path, metric count, max_results) for assertions.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest
from servers import MlflowServer, free_port

SUB = "00000000-1111-2222-3333-444444444444"
RG = "rg-trackbridge"
WS = "ws-trackbridge"
SCOPE = (f"/subscriptions/{SUB}/resourceGroups/{RG}"
         f"/providers/Microsoft.MachineLearningServices/workspaces/{WS}")
PREFIX = f"/mlflow/v2.0{SCOPE}"
TOKEN_ENV = "TB_AZ_TOKEN"
TOKEN = "not-a-secret"
MAX_METRICS = 250
MAX_TAGS = 50
MAX_TAG_KEY = 100
MAX_TAG_VALUE = 1000
API = "/api/2.0/mlflow/"


class AzurePrefixedServer(MlflowServer):
    """``mlflow server --static-prefix /mlflow/v2.0/subscriptions/.../workspaces/<ws>``."""

    @property
    def base_url(self) -> str:
        return self.url + PREFIX

    def start(self, timeout: float = 90.0) -> "AzurePrefixedServer":
        env = dict(os.environ)
        env.update(MLFLOW_DISABLE_TELEMETRY="true", MLFLOW_SERVER_ENABLE_JOB_EXECUTION="false", PYTHONUNBUFFERED="1")
        cmd = [
            str(Path(sys.executable).with_name("mlflow")), "server",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
            "--artifacts-destination", str(self.root / "artifacts"),
            "--workers", str(self.workers),
            "--static-prefix", PREFIX,
        ]
        log = open(self.root / "server.log", "ab")
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited: see {self.root / 'server.log'}")
            try:
                with urllib.request.urlopen(self.base_url + "/health", timeout=1) as resp:
                    if resp.status == 200:
                        return self
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"mlflow server did not become healthy in {timeout}s")


@dataclass
class Seen:
    method: str
    path: str
    status: int
    metrics: int = 0
    max_results: int | None = None
    tags: list[str] = field(default_factory=list)


def _azure_error(status: int, code: str, message: str) -> tuple[int, bytes]:
    """An error body shaped like Azure ML's MLflow service answers (mlflow/mlflow#11462)."""
    body = {"error_code": code, "message": message,
            "Error": {"Code": "ValidationError" if status == 400 else "ServiceError", "Message": message},
            "statusCode": status}
    return status, json.dumps(body).encode()


class AzureLimitProxy:
    """The proxy (see the module docstring).  ``url`` is the workspace ``endpoint``."""

    def __init__(self, upstream: str, token: str | None = TOKEN) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = token
        self.aliases = True
        self.logged_models = True
        self.seen: list[Seen] = []
        self._fail: list[int] = []
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                status, headers, data = proxy._answer(self.command, self.path, dict(self.headers), body)
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _handle

        self.port = free_port()
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> "AzureLimitProxy":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.seen.clear()
            self._fail.clear()
        self.aliases = True
        self.logged_models = True

    def fail_next(self, count: int, status: int = 429) -> None:
        """Answer the next ``count`` tracking API requests with ``status`` (throttling)."""
        with self._lock:
            self._fail.extend([status] * count)

    def requests(self, suffix: str) -> list[Seen]:
        return [s for s in self.seen if s.path.split("?")[0].endswith(suffix)]

    # -- the checks ---------------------------------------------------------

    def _answer(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        parsed = urlparse(path)
        seen = Seen(method, parsed.path, 0)
        tracked = API in parsed.path
        refusal = self._check(method, parsed, headers, body, seen) if tracked else None
        if refusal is None and tracked:
            with self._lock:
                injected = self._fail.pop(0) if self._fail else None
            if injected is not None:
                refusal = _azure_error(injected, "REQUEST_LIMIT_EXCEEDED" if injected == 429 else "TEMPORARILY_UNAVAILABLE",
                                       f"injected {injected}")
        if refusal is not None:
            seen.status = refusal[0]
            self.seen.append(seen)
            extra = {"Retry-After": "0"} if refusal[0] == 429 else {}
            return refusal[0], {"Content-Type": "application/json", **extra}, refusal[1]
        status, out_headers, data = self._forward(method, path, headers, body)
        seen.status = status
        self.seen.append(seen)
        return status, out_headers, data

    def _check(self, method: str, parsed: Any, headers: dict[str, str], body: bytes, seen: Seen) -> tuple[int, bytes] | None:
        if self.token is not None:
            auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
            if auth != f"Bearer {self.token}":
                return _azure_error(401, "UNAUTHENTICATED", "missing or wrong bearer token")
        api = parsed.path.split(API, 1)[1]
        payload: dict[str, Any] = {}
        if body:
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
        if api == "metrics/get-history":
            raw = parse_qs(parsed.query).get("max_results", [None])[0]
            seen.max_results = int(raw) if raw else None
            if seen.max_results is None or seen.max_results >= 1000:
                return _azure_error(400, "BAD_REQUEST", f"MaxResults = {seen.max_results or 25000} is invalid: "
                                                        "MaxResults must be less than 1000.")
        if api == "runs/log-batch":
            seen.metrics = len(payload.get("metrics") or [])
            if seen.metrics > MAX_METRICS:
                return _azure_error(400, "INVALID_PARAMETER_VALUE",
                                    f"A field of the entity is over the size limit. FieldName=MetricV2Dto.Value/Count, "
                                    f"Limit={MAX_METRICS}, Size={seen.metrics}.")
        tags = self._tags_written(api, payload)
        seen.tags = [t["key"] for t in tags]
        for tag in tags:
            key, value = tag.get("key", ""), tag.get("value", "")
            if key == "mlflow.user":
                return _azure_error(400, "INVALID_PARAMETER_VALUE", "mlflow.user cannot be set.")
            if api == "runs/create" and key.startswith("mlflow.source."):
                return _azure_error(400, "INVALID_PARAMETER_VALUE",
                                    f"{key} at run creation (Azure ML drops mlflow.source.* tags there)")
            if len(key) > MAX_TAG_KEY or len(value or "") > MAX_TAG_VALUE:
                return _azure_error(400, "INVALID_PARAMETER_VALUE",
                                    f"tag {key[:40]!r}: key <= {MAX_TAG_KEY}, value <= {MAX_TAG_VALUE} characters")
        if tags:
            run_id = payload.get("run_id") or payload.get("run_uuid")
            existing = self._run_tag_keys(parsed.path.split(API, 1)[0], run_id) if api != "runs/create" else set()
            total = existing | {t["key"] for t in tags}
            if api == "runs/create" and payload.get("run_name"):
                total.add("mlflow.runName")
            if len(total) > MAX_TAGS:
                return _azure_error(400, "INVALID_PARAMETER_VALUE",
                                    f"A run can have at most {MAX_TAGS} tags; this request makes {len(total)}.")
        if not self.aliases and api.startswith("registered-models/alias"):
            return _azure_error(404, "ENDPOINT_NOT_FOUND", "aliases are not supported by this registry")
        if not self.logged_models and api.startswith("logged-models"):
            return _azure_error(404, "ENDPOINT_NOT_FOUND", "no MLflow 3 logged models in this workspace")
        return None

    @staticmethod
    def _tags_written(api: str, payload: dict[str, Any]) -> list[dict[str, str]]:
        if api in ("runs/create", "runs/log-batch"):
            return list(payload.get("tags") or [])
        if api == "runs/set-tag":
            return [{"key": payload.get("key", ""), "value": payload.get("value", "")}]
        return []

    def _run_tag_keys(self, prefix: str, run_id: str | None) -> set[str]:
        """The run's current tag keys, asked of the server (what Azure counts)."""
        if not run_id:
            return set()
        url = f"{self.upstream}{prefix}{API}runs/get?run_id={run_id}"
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:
                run = json.loads(resp.read())
        except urllib.error.URLError:
            return set()
        return {t["key"] for t in run.get("run", {}).get("data", {}).get("tags", [])}

    def _forward(self, method: str, path: str, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, str], bytes]:
        drop = {"host", "content-length", "connection", "transfer-encoding", "accept-encoding"}
        request = urllib.request.Request(self.upstream + path, data=body if body or method in ("POST", "PUT", "PATCH") else None,
                                         method=method, headers={k: v for k, v in headers.items() if k.lower() not in drop})
        try:
            with urllib.request.urlopen(request, timeout=120) as resp:
                status, data, out = resp.status, resp.read(), resp.headers
        except urllib.error.HTTPError as err:
            status, data, out = err.code, err.read(), err.headers
        keep = {k: v for k, v in out.items() if k.lower() in ("content-type",)}
        return status, keep, data


@dataclass
class AzureWorkspace:
    """What a test needs to open the stand-in workspace with the real plugin."""

    server: AzurePrefixedServer
    proxy: AzureLimitProxy

    def options(self, **extra: Any) -> dict[str, Any]:
        opts: dict[str, Any] = {"subscription_id": SUB, "resource_group": RG, "workspace": WS,
                                "endpoint": self.proxy.url, "token_env": TOKEN_ENV, "http_retries": 1}
        opts.update(extra)
        return opts

    def backend(self, **extra: Any) -> Any:
        from trackbridge.backends.azureml.backend import AzureMLBackend

        return AzureMLBackend(self.options(**extra))

    def experiment(self) -> str:
        return f"azure-{uuid.uuid4().hex[:10]}"


#: MLflow's process-wide HTTP settings, which the backend sets for its connections.
HTTP_VARS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
             "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1"}


def restore_http_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make MLflow's HTTP variables revert after the test (the backend writes them)."""
    for var, default in HTTP_VARS.items():
        monkeypatch.setenv(var, os.environ.get(var, default))


@pytest.fixture(scope="session")
def azureml_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzurePrefixedServer]:
    """A real MLflow server under Azure ML's workspace URL prefix (one per session)."""
    server = AzurePrefixedServer(tmp_path_factory.mktemp("azureml-server")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azureml_proxy(azureml_server: AzurePrefixedServer) -> Iterator[AzureLimitProxy]:
    proxy = AzureLimitProxy(azureml_server.url).start()
    yield proxy
    proxy.stop()


@pytest.fixture
def azureml_workspace(azureml_server: AzurePrefixedServer, azureml_proxy: AzureLimitProxy,
                      monkeypatch: pytest.MonkeyPatch) -> AzureWorkspace:
    """The stand-in workspace: server + limit proxy, the token in ``$TB_AZ_TOKEN``."""
    azureml_proxy.reset()
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    restore_http_env(monkeypatch)
    return AzureWorkspace(azureml_server, azureml_proxy)
