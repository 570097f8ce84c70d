"""Runs produced by the real wandb SDK in offline mode, for the W&B backend tests.

Each run is made in a child process (fresh wandb globals, the suite's quiet env, its
own WANDB_DIR/WANDB_DATA_DIR) which also writes ``expected.json``: exactly what the
script logged, so the tests compare our reader with the SDK's input, not with itself.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from collections.abc import Iterator
from typing import Any

import pytest

ROWS = 1500

SDK_SCRIPT = textwrap.dedent(
    """
    import json, math, os, sys, pathlib
    import wandb

    out = pathlib.Path(sys.argv[1])
    rows = int(sys.argv[2])
    (out / "model").mkdir(parents=True, exist_ok=True)
    (out / "model" / "weights.bin").write_bytes(b"\\x00\\x01" * 500)
    (out / "model" / "config.json").write_text('{"layers": 2}')
    (out / "data").mkdir(exist_ok=True)
    (out / "data" / "train.csv").write_text("a,b\\n1,2\\n")
    (out / "data" / "sub").mkdir(exist_ok=True)
    (out / "data" / "sub" / "test.csv").write_text("a,b\\n3,4\\n")

    config = {"lr": 0.01, "batch": 32, "model": {"layers": [64, 32], "act": "relu",
              "opt": {"name": "adam", "eps": 1e-08}}}
    run = wandb.init(project="proj-a", name="sdk-run", config=config, tags=["base", "x"],
                     notes="first notes", group="grp-1", job_type="train", dir=str(out))
    expected = {"run_id": run.id, "config": config, "loss": [], "acc": [], "val": []}
    for i in range(rows):
        loss = float("nan") if i == 7 else (float("inf") if i == 8 else 1.0 / (i + 1))
        row = {"loss": loss, "acc": i / rows}
        if i % 100 == 0:
            row["val/loss"] = 2.0 / (i + 1)
            expected["val"].append([i, row["val/loss"]])
        run.log(row)
        expected["loss"].append([i, "nan" if math.isnan(loss) else loss])
        expected["acc"].append([i, i / rows])
    # repeated and out-of-order user steps: W&B keeps one row per step, drops lower steps
    run.log({"late": 1.0}, step=rows + 10)
    run.log({"late2": 2.0}, step=rows + 10)     # same step: merged into the same row
    run.log({"late": 3.0}, step=rows + 5)       # lower step: the SDK drops it (warning)
    run.log({"late": 4.0}, step=rows + 20)
    expected["late"] = [[rows + 10, 1.0], [rows + 20, 4.0]]
    expected["late2"] = [[rows + 10, 2.0]]
    run.summary["best_acc"] = 0.5
    run.summary["best_acc"] = 0.9
    run.summary.update({"final": {"a": 1, "b": "text"}})
    run.tags = run.tags + ("late-tag",)
    run.notes = "edited notes"
    art = wandb.Artifact("dataset-a", type="dataset", metadata={"rows": 2})
    art.add_dir(str(out / "data"))
    run.log_artifact(art)
    run.log_model(str(out / "model"), name="my-model")
    expected["summary"] = {"best_acc": 0.9, "final": {"a": 1, "b": "text"}}
    expected["tags"] = ["base", "x", "late-tag"]
    expected["notes"] = "edited notes"
    run.finish()
    (out / "expected.json").write_text(json.dumps(expected))
    """
)


def sdk_env(root: Path) -> dict[str, str]:
    """The suite's quiet offline env, with every wandb dir under ``root``."""
    env = dict(os.environ)
    env.update({
        "WANDB_MODE": "offline", "WANDB_SILENT": "true", "WANDB_DISABLE_CODE": "true",
        "WANDB_DIR": str(root), "WANDB_DATA_DIR": str(root / "data-dir"),
        "WANDB_CACHE_DIR": str(root / "cache-dir"), "WANDB_CONFIG_DIR": str(root / "config-dir"),
        "HOME": str(root),
    })
    return env


def make_sdk_run(root: Path, rows: int = ROWS) -> tuple[Path, dict[str, Any]]:
    """Run :data:`SDK_SCRIPT`; return the run dir (``offline-run-*``) and ``expected``."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "make_run.py"
    script.write_text(SDK_SCRIPT)
    subprocess.run([sys.executable, str(script), str(root), str(rows)], env=sdk_env(root),
                   check=True, timeout=300, cwd=root)
    expected = json.loads((root / "expected.json").read_text())
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    return run_dir, expected


def wandb_file(run_dir: Path) -> Path:
    (path,) = run_dir.glob("run-*.wandb")
    return path


@pytest.fixture(scope="session")
def sdk_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """One rich run made by the real SDK, shared by the session (read-only: copy it
    before damaging it)."""
    return make_sdk_run(tmp_path_factory.mktemp("wandb-sdk-run"))


# -- a local W&B server stand-in that records what `wandb sync` uploads -------------------
#
# Built from the requests the Go core's `wandb sync` (wandb 0.31) actually sends, with
# the response shapes of its GraphQL documents (core/api/graphql/*.graphql in the wandb
# repository): UpsertBucket, CreateRunFiles, CreateArtifact, CreateArtifactManifest,
# CreateArtifactFiles, CommitArtifact, UpdateArtifactManifest, FetchOrgEntityFromEntity and
# LinkArtifact (registry links); the file stream
# (POST /files/<entity>/<project>/<run>/file_stream) and file uploads (PUT).

import threading  # noqa: E402
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: E402


class WandbRecorder:
    """Answers `wandb sync` on 127.0.0.1 and keeps, per run: the UpsertBucket
    variables (each call), the file-stream lines per file, and uploaded files."""

    def __init__(self) -> None:
        self.upserts: dict[str, list[dict[str, Any]]] = {}
        self.stream: dict[str, dict[str, list[str]]] = {}
        #: run -> file -> line offset -> line, as W&B stores the file stream
        self.lines: dict[str, dict[str, dict[int, str]]] = {}
        self.uploads: dict[str, bytes] = {}
        self.operations: list[str] = []
        self.unknown: list[str] = []
        self.requests: list[dict[str, Any]] = []
        #: artifact client id -> the artifact id this recorder gave it (CreateArtifact)
        self.artifact_ids: dict[str, str] = {}
        #: LinkArtifact variables in arrival order, with ``artifact`` = the linked artifact id
        self.links: list[dict[str, Any]] = []
        #: artifact id -> its CreateArtifact input (what ArtifactByID serves back)
        self.artifacts: dict[str, dict[str, Any]] = {}
        #: artifact id -> (run name, id of its manifest) from CreateArtifactManifest
        self.manifests: dict[str, tuple[str, str]] = {}
        #: artifact id -> (file name, md5 base64) from CreateArtifactFiles
        self.artifact_files: dict[str, list[tuple[str, str]]] = {}
        #: uploaded bodies by their md5 (hex): artifact files are downloaded by content
        self.by_md5: dict[str, bytes] = {}
        self._ids = 0
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.startswith("/graphql"):
                    self._json(recorder.graphql(json.loads(body)))
                elif self.path.endswith("/file_stream"):
                    recorder.file_stream(self.path, json.loads(body))
                    self._json({"exitcode": None, "limits": {}})
                else:
                    recorder.unknown.append(f"POST {self.path}")
                    self._json({})

            def do_PUT(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                import hashlib

                with recorder._lock:
                    recorder.uploads[self.path] = body
                    recorder.by_md5[hashlib.md5(body).hexdigest()] = body
                self._json({})

            def do_GET(self) -> None:  # noqa: N802
                body = recorder.uploads.get(self.path) if self.path.startswith("/upload/") else None
                if self.path.startswith(("/artifactsV2/", "/artifacts/")):  # .../<md5 hex>[/<name>]
                    parts = self.path.split("?")[0].split("/")
                    body = recorder.by_md5.get(parts[-2]) or recorder.by_md5.get(parts[-1])
                if body is not None:
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                recorder.unknown.append(f"GET {self.path}")
                self._json({})

            def _json(self, data: Any) -> None:
                out = json.dumps(data).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self._reads = {
            "Viewer": lambda v: {"viewer": {"id": "u1", "entity": "recorder", "username": "recorder",
                                            "email": "r@example.invalid", "flags": "{}", "teams": {"edges": []}}},
            "GetDefaultEntity": lambda v: {"viewer": {"id": "u1", "entity": "recorder"}},
            "Run": lambda v: {"project": {"run": self._run_attrs(v["name"], full=True)}},
            "RunHistoryKeys": lambda v: {"project": {"run": {"historyKeys": self._history_keys(v["name"])}}},
            "RunParquetHistory": lambda v: {"project": {"run": {"parquetHistory": {"parquetUrls": [], "liveData": []}}}},
            "HistoryPage": lambda v: {"project": {"run": {"history": [
                json.dumps(h) for h in self.history(v["run"]) if v["minStep"] <= h["_step"] < v["maxStep"]]}}},
            "Runs": self._runs_page,
            "GetProjects": self._projects_page,
            "RunFiles": self._files_page,
            "RunOutputArtifacts": self._output_artifacts,
            "GetArtifactMembershipFileUrls": self._membership_files,
            "RunInputArtifacts": lambda v: {"project": {"run": {"artifacts": {
                "totalCount": 0, "edges": [], "pageInfo": {"__typename": "PageInfo", "endCursor": None,
                                                           "hasNextPage": False}}}}},
            "FetchArtifactManifest": lambda v: {"artifact": {"currentManifest": {"file": {
                "directUrl": f"{self.url}/upload/manifest/{self.manifests[v['id']][1]}"}}}
                if v["id"] in self.manifests else None},
            # registry search (wandb.Api().registries) is a feature servers announce
            "ServerFeaturesQuery": lambda v: {"serverInfo": {"features": [
                {"name": "ARTIFACT_REGISTRY_SEARCH", "isEnabled": True}]}},
            # asked by the live SDK before logging an artifact (no artifact of that name yet)
            "ArtifactType": lambda v: {"project": {"artifact": None}},
            "RunResumeStatus": self._resume_status,
        }
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> "WandbRecorder":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def _id(self) -> str:
        with self._lock:
            self._ids += 1
            return f"id-{self._ids}"

    def graphql(self, request: dict[str, Any]) -> dict[str, Any]:
        op = request.get("operationName") or ""
        if not op:  # wandb.Api sends operationName "" and names the operation in the text
            import re

            found = re.search(r"(?:query|mutation)\s+(\w+)", request.get("query") or "")
            op = found.group(1) if found else ""
        v = request.get("variables") or {}
        self.operations.append(op)
        self.requests.append(request)
        if op in self._reads:
            return {"data": self._reads[op](v)}
        if op == "UpsertBucket":
            with self._lock:
                self.upserts.setdefault(v["name"], []).append(v)
            return {"data": {"upsertBucket": {"inserted": True, "bucket": {
                "id": "bucket-" + v["name"], "name": v["name"], "displayName": v.get("displayName"),
                "description": v.get("notes"), "config": v.get("config") or "{}", "sweepName": None,
                "historyLineCount": 0,
                "project": {"id": "p", "name": v.get("project") or "uncategorized",
                            "entity": {"id": "e", "name": v.get("entity") or "recorder"}}}}}}
        if op == "CreateRunFiles":
            files = [{"name": name, "uploadUrl": f"{self.url}/upload/{v['run']}/{name}"} for name in v["files"]]
            return {"data": {"createRunFiles": {"runID": v["run"], "uploadHeaders": [], "files": files}}}
        if op == "CreateArtifact":
            aid = self._id()
            given = v.get("input") or v
            self.artifacts[aid] = given
            if given.get("clientID"):
                self.artifact_ids[given["clientID"]] = aid
            return {"data": {"createArtifact": {"artifact": {
                "id": aid, "state": "PENDING", "artifactSequence": {"latestArtifact": None}}}}}
        if op in ("CreateArtifactManifest", "UpdateArtifactManifest"):
            field = "createArtifactManifest" if op == "CreateArtifactManifest" else "updateArtifactManifest"
            mid = self._id()
            if v.get("artifactID") and v.get("runName") and v.get("includeUpload") is not False:
                self.manifests[v["artifactID"]] = (v["runName"], mid)
            return {"data": {field: {"artifactManifest": {"id": mid, "file": {
                "id": mid, "uploadUrl": f"{self.url}/upload/manifest/{mid}", "uploadHeaders": []}}}}}
        if op == "CreateArtifactFiles":
            for f in (v.get("input") or v)["artifactFiles"]:
                self.artifact_files.setdefault(f.get("artifactID"), []).append((f["name"], f.get("md5") or ""))
            edges = [{"node": {"storagePath": f["name"], "uploadUrl": f"{self.url}/upload/artifact/{f['name']}",
                               "uploadHeaders": [], "uploadMultipartUrls": None, "artifact": {"id": f.get("artifactID")}}}
                     for f in (v.get("input") or v)["artifactFiles"]]
            return {"data": {"createArtifactFiles": {"files": {"edges": edges}}}}
        if op == "ArtifactByID":
            return {"data": {"artifact": self._artifact_node(v["id"]) if v["id"] in self.artifacts else None}}
        if op == "FetchOrgInfoFromEntity":  # the Python SDK's question (the Go core asks the next one)
            return {"data": {"entity": {"organization": {"name": "Recorder Org", "orgEntity": {"name": "recorder-org"}},
                                        "user": None}}}
        if op == "ArtifactMembershipByName":
            name, _, index = v.get("name", "").rpartition(":v")
            found = [m for m in self._memberships() if m["artifactCollection"]["name"] == name
                     and str(m["versionIndex"]) == index]
            return {"data": {"project": {"artifactCollectionMembership": found[0] if found else None}}}
        if op == "RegistryVersions":
            wanted = json.loads(v.get("registryFilter") or "{}").get("name")
            edges = [{"node": m} for m in self._memberships()
                     if wanted is None or m["artifactCollection"]["project"]["name"] in (wanted, f"wandb-registry-{wanted}")]
            return {"data": {"organization": {"orgEntity": {"name": "recorder-org", "artifactMemberships": {
                "pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}, "edges": edges}}}}}
        if op == "ArtifactCreatedBy":
            run = next((run for aid, (run, _mid) in self.manifests.items() if aid == v.get("id")), None)
            creator = None if run is None else {"__typename": "Run", "id": f"storage-{run}", "name": run, "project": {
                "id": "p", "internalId": "p", "name": self.artifacts[v["id"]].get("projectName"),
                "entity": {"name": "recorder"}}}
            return {"data": {"artifact": {"createdBy": creator}}}
        if op == "FetchOrgEntityFromEntity":
            return {"data": {"entity": {"organization": {"name": "Recorder Org",
                                                         "orgEntity": {"name": "recorder-org"}}}}}
        if op == "LinkArtifact":
            v = v.get("input") or v  # the Python SDK sends an input object, the Go core variables
            v = {"artifactId": v.get("artifactID") or v.get("artifactId"), "clientId": v.get("clientID") or v.get("clientId"),
                 **{k: v.get(k) for k in ("artifactPortfolioName", "entityName", "projectName", "aliases")}}
            artifact = v.get("artifactId") or self.artifact_ids.get(v.get("clientId") or "")
            with self._lock:
                collection = [link for link in self.links if link["artifactPortfolioName"] == v["artifactPortfolioName"]]
                index = next((link["versionIndex"] for link in collection if link["artifact"] == artifact),
                             len({link["artifact"] for link in collection}))
                self.links.append({**v, "artifact": artifact, "versionIndex": index})
            if artifact is None:
                return {"errors": [{"message": f"no artifact with client id {v.get('clientId')!r}"}], "data": None}
            result = {"versionIndex": index, "artifactMembership": None}
            return {"data": {"linkArtifact": result, "result": result}}
        if op == "CommitArtifact":
            return {"data": {"commitArtifact": {"artifact": {"id": v["artifactID"], "digest": ""}}}}
        self.unknown.append(op)
        return {"data": {}}

    def _memberships(self) -> list[dict[str, Any]]:
        """Every registry version the links made (ArtifactMembershipFragment): one per
        linked artifact of a collection, each alias on the version it was linked with last,
        ``latest`` on the newest."""
        members: dict[tuple[str, int], dict[str, Any]] = {}
        holder: dict[tuple[str, str], tuple[str, int]] = {}
        for link in self.links:
            key = (link["artifactPortfolioName"], link["versionIndex"])
            members.setdefault(key, {
                "__typename": "ArtifactCollectionMembership", "id": f"m-{link['artifact']}",
                "versionIndex": link["versionIndex"], "createdAt": "2026-12-01T00:00:00", "aliases": [],
                "artifactCollection": {"__typename": "ArtifactPortfolio", "name": key[0], "project": {
                    "id": "p", "internalId": "p", "name": link["projectName"], "entity": {"name": link["entityName"]}}},
                "artifact": self._artifact_node(link["artifact"])})
            for alias in link.get("aliases") or []:
                holder[(key[0], alias["alias"])] = key
        for collection in {k[0] for k in members}:
            holder[(collection, "latest")] = max(k for k in members if k[0] == collection)
        for (_collection, alias), key in sorted(holder.items()):
            members[key]["aliases"].append({"__typename": "ArtifactAlias", "id": f"a-{alias}", "alias": alias})
        return list(members.values())

    def _output_artifacts(self, v: dict[str, Any]) -> dict[str, Any]:
        """The artifacts run ``v["run"]`` logged (its manifests name it), as ArtifactFragment."""
        nodes = [self._artifact_node(aid) for aid, (run, _mid) in self.manifests.items() if run == v["run"]]
        return {"project": {"run": {"artifacts": {
            "totalCount": len(nodes), "edges": [{"node": n} for n in nodes],
            "pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}}}}}

    def _artifact_node(self, aid: str) -> dict[str, Any]:
        """An artifact as ArtifactFragment asks for it, from what CreateArtifact sent."""
        given = self.artifacts[aid]
        project = {"id": "p", "internalId": "p", "name": given.get("projectName") or "uncategorized",
                   "entity": {"name": given.get("entityName") or "recorder"}}
        return {"__typename": "Artifact", "id": aid,
                "artifactSequence": {"__typename": "ArtifactSequence", "name": given.get("artifactCollectionName"),
                                     "project": project},
                "versionIndex": self._version_index(aid), "artifactType": {"name": given.get("artifactTypeName") or "model"},
                "description": given.get("description"), "metadata": given.get("metadata"),
                "ttlDurationSeconds": -1, "ttlIsInherited": True, "tags": [], "historyStep": None,
                "state": "COMMITTED", "size": 0, "digest": given.get("digest") or "", "commitHash": None,
                "fileCount": 0, "createdAt": "2026-12-01T00:00:00", "updatedAt": None, "aliases": []}

    def _membership_files(self, v: dict[str, Any]) -> dict[str, Any]:
        """The files of artifact ``collection:alias`` (``vN`` or ``latest``), with URLs."""
        import base64

        same = [a for a, g in self.artifacts.items()
                if g.get("artifactCollectionName") == v["collection"] and g.get("projectName") == v["project"]]
        index = len(same) - 1 if v["alias"] == "latest" else int(v["alias"].lstrip("v") or 0)
        edges = [{"node": {"__typename": "File", "name": name,
                           "directUrl": f"{self.url}/artifacts/recorder/{base64.b64decode(md5).hex()}"}}
                 for name, md5 in self.artifact_files.get(same[index], [])] if 0 <= index < len(same) else []
        return {"project": {"artifactCollection": {"__typename": "ArtifactSequence", "artifactMembership": {
            "files": {"pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False},
                      "edges": edges}}}}}

    def _version_index(self, aid: str) -> int:
        """The artifact's place among the artifacts of its name and project (W&B's vN)."""
        given = self.artifacts[aid]
        same = [a for a, g in self.artifacts.items() if g.get("artifactCollectionName") == given.get("artifactCollectionName")
                and g.get("projectName") == given.get("projectName")]
        return same.index(aid)

    # -- serving what was uploaded, in the shapes wandb.Api reads (wandb 0.31's queries:
    #    Run/RunFragment, Runs/LightweightRunFragment, GetProjects, RunHistoryKeys,
    #    RunParquetHistory + HistoryPage (scan_history through wandb-core), RunFiles)

    def _run_attrs(self, name: str, full: bool = False) -> dict[str, Any] | None:
        upserts = self.upserts.get(name)
        if not upserts:
            return None
        last: dict[str, Any] = {}
        for u in upserts:
            last.update({k: v for k, v in u.items() if v is not None})
        history = self.history(name)
        done = json.loads(self.stream.get(name, {}).get("__complete__", ["null"])[-1])
        attrs = {
            "id": f"storage-{name}", "name": name, "displayName": last.get("displayName"),
            "tags": last.get("tags") or [], "sweepName": None,
            "state": "running" if done is None else ("finished" if done == 0 else "failed"),
            "group": last.get("groupName"), "jobType": last.get("jobType"), "commit": None, "readOnly": False,
            "createdAt": "2023-11-14T22:13:20", "heartbeatAt": "2023-11-14T22:13:25",
            "description": last.get("notes"), "notes": last.get("notes"), "historyLineCount": len(history),
            "user": {"name": "Recorder", "username": "recorder"}, "projectId": "1",
        }
        if full:
            attrs.update({"config": last.get("config") or "{}", "systemMetrics": "{}",
                          "summaryMetrics": json.dumps(self.summary(name)),
                          "historyKeys": self._history_keys(name)})
        return attrs

    def _resume_status(self, v: dict[str, Any]) -> dict[str, Any]:
        """What ``wandb.init(resume=...)`` asks of a run (core/api/graphql/query_run_resume_status):
        its config, summary, line counts and the tail of its history."""
        model = {"id": "p", "name": v.get("project") or "uncategorized", "entity": {"id": "e", "name": "recorder"},
                 "bucket": None}
        attrs = self._run_attrs(v["name"], full=True)
        if attrs is None:
            return {"model": model}
        stream = self.lines.get(v["name"], {})
        history = self.history(v["name"])
        model["bucket"] = {
            "id": attrs["id"], "name": v["name"], "displayName": attrs["displayName"],
            "summaryMetrics": attrs["summaryMetrics"], "config": attrs["config"], "tags": attrs["tags"],
            "notes": attrs["notes"], "wandbConfig": json.dumps({"t": {}}),
            "historyLineCount": len(stream.get("wandb-history.jsonl", {})),
            "eventsLineCount": len(stream.get("wandb-events.jsonl", {})),
            "logLineCount": len(stream.get("output.log", {})),
            "historyTail": json.dumps([json.dumps(h) for h in history[-1:]]), "eventsTail": "[]"}
        return {"model": model}

    def _history_keys(self, name: str) -> dict[str, Any]:
        history = self.history(name)
        keys = {k: {"typeCounts": [{"type": "number", "count": 1}]} for h in history for k in h}
        return {"keys": keys, "lastStep": max((h["_step"] for h in history), default=-1)}

    def _page(self, nodes: list[dict[str, Any]]) -> dict[str, Any]:
        return {"edges": [{"node": n, "cursor": str(i)} for i, n in enumerate(nodes)],
                "pageInfo": {"__typename": "PageInfo", "endCursor": None, "hasNextPage": False}}

    def _runs_page(self, v: dict[str, Any]) -> dict[str, Any]:
        names = [n for n, ups in self.upserts.items() if (ups[0].get("project") or "uncategorized") == v["project"]]
        wanted = json.loads(v.get("filters") or "{}").get("name") if isinstance(v.get("filters"), str) else None
        names = [n for n in names if wanted is None or n == wanted]  # W&B's run filter by id
        page = self._page([self._run_attrs(n) for n in names])
        return {"project": {"internalId": "1", "runCount": len(names), "readOnly": False, "runs": page}}

    def _projects_page(self, v: dict[str, Any]) -> dict[str, Any]:
        names = sorted({ups[0].get("project") or "uncategorized" for ups in self.upserts.values()})
        nodes = [{"__typename": "Project", "id": f"p-{n}", "name": n, "entityName": "recorder",
                  "createdAt": "2023-11-14T22:13:20", "isBenchmark": False, "user": None} for n in names]
        return {"models": self._page(nodes)}

    def _files_page(self, v: dict[str, Any]) -> dict[str, Any]:
        import base64
        import hashlib

        prefix = f"/upload/{v['name']}/"
        nodes = [{"id": f"f-{path}", "name": path[len(prefix):], "url": self.url + path, "directUrl": self.url + path,
                  "sizeBytes": len(body), "mimetype": "application/octet-stream", "updatedAt": "2023-11-14T22:13:25",
                  "md5": base64.b64encode(hashlib.md5(body).digest()).decode()}
                 for path, body in sorted(self.uploads.items()) if path.startswith(prefix)]
        return {"project": {"internalId": "1", "run": {"fileCount": len(nodes), "files": self._page(nodes)}}}

    def file_stream(self, path: str, body: dict[str, Any]) -> None:
        run = path.rstrip("/").split("/")[-2]
        with self._lock:
            files = self.stream.setdefault(run, {})
            lines = self.lines.setdefault(run, {})
            for name, chunk in (body.get("files") or {}).items():
                content = chunk.get("content") or []
                files.setdefault(name, []).extend(content)
                # W&B keeps a file's lines by offset: a line sent again replaces the old one
                at = lines.setdefault(name, {})
                for i, line in enumerate(content):
                    at[int(chunk.get("offset") or 0) + i] = line
            if body.get("complete"):
                files.setdefault("__complete__", []).append(json.dumps(body.get("exitcode")))

    def history(self, run: str) -> list[dict[str, Any]]:
        """The run's history rows as W&B keeps them (by line offset)."""
        at = self.lines.get(run, {}).get("wandb-history.jsonl", {})
        return [json.loads(at[i]) for i in sorted(at)]

    def summary(self, run: str) -> dict[str, Any]:
        lines = self.stream.get(run, {}).get("wandb-summary.json", [])
        return json.loads(lines[-1]) if lines else {}

    def config(self, run: str) -> dict[str, Any]:
        """The run's config as the last upsert sent it (W&B's ``{"k": {"value": v}}`` form undone)."""
        for upsert in reversed(self.upserts.get(run, [])):
            if upsert.get("config"):
                return {k: v.get("value") for k, v in json.loads(upsert["config"]).items()}
        return {}


def wandb_sync(paths: list[Path], base_url: str, timeout: float = 120, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """The real `wandb sync` (Go core) against ``base_url``, in a timeout (it retries
    forever on a bad host).  A dummy key: the recorder accepts any."""
    wandb_bin = Path(sys.executable).parent / "wandb"
    env = dict(os.environ)
    env.update({"WANDB_BASE_URL": base_url, "WANDB_API_KEY": "local-" + "0" * 40, "WANDB_MODE": "online",
                "WANDB_SILENT": "false"})
    proc = subprocess.Popen([str(wandb_bin), "sync", "--include-synced", *map(str, paths)], env=env, cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # wandb-core too: the whole session we started
        out, err = proc.communicate()
        raise AssertionError(f"wandb sync did not finish in {timeout} s:\n{out[-2000:]}\n{err[-2000:]}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@pytest.fixture
def sdk_sockets() -> Iterator[None]:
    """Let the in-process wandb SDK reach its wandb-core service over a Unix socket; every
    other connection stays loopback-only, as the suite's pytest-socket settings have it."""
    import pytest_socket

    pytest_socket.socket_allow_hosts(["127.0.0.1", "::1", "localhost"], allow_unix_socket=True)
    yield
    import wandb

    wandb.teardown()  # the SDK's process-wide settings (dirs, mode) must not leak into the next test


T0_REG = 1_700_000_000_000


def write_registered(root: Path, files_dir: Path) -> tuple[list[str], str]:
    """Two runs, each logging a model registered as a version of one model; ``champion``
    set on version 1, then moved to version 2; ``staging`` on version 1."""
    from trackbridge.backends import get_backend
    from trackbridge.history import Row
    from trackbridge.model import LoggedModel, ModelVersion, RegisteredModel, RunStatus

    w = get_backend("wandb-offline", {"path": str(root), "entity": "team-a"}).writer()
    (files_dir / "model").mkdir(parents=True)
    runs = []
    for i in range(2):
        (files_dir / "model" / "weights.bin").write_bytes(bytes([i]) * 50)
        run_id = w.create_run("proj-r", name=f"r{i}", start_time=T0_REG + 2000 * i,
                              tags={"trackbridge.source.platform": "mlflow", "trackbridge.source.run_id": f"m{i}"})
        w.log_model(run_id, files_dir / "model", LoggedModel("clf", "clf"))
        w.log_rows(run_id, [Row(0, T0_REG + 2000 * i, {"loss": 0.5 + i})])
        w.log_summary(run_id, {"best": i})
        runs.append(run_id)
    w.register_model(RegisteredModel("fraud model/v2", "detects fraud", {"owner": "ada"}))
    made = [w.create_model_version(ModelVersion("fraud model/v2", "", run_id=r, artifact_path="clf",
                                                description=f"version from {r}", tags={"k": str(i)}), r)
            for i, r in enumerate(runs)]
    w.set_model_alias("fraud model/v2", "champion", made[0].version)
    w.set_model_alias("fraud model/v2", "staging", made[0].version)
    w.set_model_alias("fraud model/v2", "champion", made[1].version)
    for r in runs:
        w.finish_run(r, RunStatus.FINISHED, T0_REG + 5000)
    w.close()
    return runs, "fraud-model-v2"


# -- a run as users write it with media, define_metric, artifacts and models (issue 14) --

RICH_SCRIPT = textwrap.dedent(
    """
    import json, sys, time, pathlib
    import numpy as np
    import wandb

    out = pathlib.Path(sys.argv[1])
    rng = np.random.default_rng(7)
    # a short stats interval: the SDK samples system metrics while the epochs run
    run = wandb.init(project="rich", name="rich-run", config={"lr": 0.1}, dir=str(out),
                     settings=wandb.Settings(x_stats_sampling_interval=0.1))
    run.define_metric("epoch")
    run.define_metric("val/*", step_metric="epoch", summary="min")
    expected = {"run_id": run.id, "train": [], "val_loss": [], "hist": [], "captions": [], "images": []}
    for epoch in range(3):
        for i in range(4):
            run.log({"train/loss": 1.0 / (1 + epoch * 4 + i)})
            expected["train"].append(1.0 / (1 + epoch * 4 + i))
        counts, edges = np.histogram(rng.normal(size=200), bins=6)
        img = (rng.random((8, 6, 3)) * 255).astype("uint8")
        run.log({"epoch": epoch, "val/loss": 0.5 / (epoch + 1),
                 "weights": wandb.Histogram(np_histogram=(counts, edges)),
                 "val/examples": wandb.Image(img, caption=f"epoch {epoch}")})
        expected["val_loss"].append([epoch, 0.5 / (epoch + 1)])
        expected["hist"].append({"bins": edges.tolist(), "values": counts.tolist()})
        expected["captions"].append(f"epoch {epoch}")
        time.sleep(0.25)
    table = wandb.Table(columns=["a", "b"], data=[[1, "x"], [2, "y"]])
    run.log({"preds": table})
    (out / "d.csv").write_text("a,b\\n1,2\\n")
    art = wandb.Artifact("dataset-a", type="dataset", description="training rows", metadata={"rows": 1, "src": "x"})
    art.add_file(str(out / "d.csv"))
    run.log_artifact(art, aliases=["best", "first"])
    for c in (1, 2):
        (out / f"model-{c}").mkdir()
        (out / f"model-{c}" / "model.pkl").write_bytes(f"weights C={c}".encode())
        run.log_model(str(out / f"model-{c}"), name="clf")
    run.finish()
    (out / "expected.json").write_text(json.dumps(expected))
    """
)


def make_rich_run(root: Path) -> tuple[Path, dict[str, Any]]:
    """Run :data:`RICH_SCRIPT` with the real SDK; return the run dir and ``expected``."""
    root.mkdir(parents=True, exist_ok=True)
    script = root / "make_rich.py"
    script.write_text(RICH_SCRIPT)
    subprocess.run([sys.executable, str(script), str(root)], env=sdk_env(root), check=True, timeout=300, cwd=root)
    (run_dir,) = (root / "wandb").glob("offline-run-*")
    return run_dir, json.loads((root / "expected.json").read_text())


@pytest.fixture(scope="session")
def sdk_rich_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The rich SDK run, shared by the session (read-only: copy it before damaging it)."""
    return make_rich_run(tmp_path_factory.mktemp("wandb-rich-run"))
