"""Azure ML remote options, credentials, workspace lookup and doctor lines, without a server.

The workspace lookup goes through the real azure-ai-ml ``MLClient`` with an
azure-core ``RequestsTransport`` whose ``requests`` session answers ARM's documented
workspace response (no socket is opened); credentials are the real azure-identity
classes, the Azure CLI one running a fake ``az`` on PATH."""
from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from trackbridge.backends.azureml import credentials, workspace
from trackbridge.backends.azureml.backend import AzureMLBackend
from trackbridge.backends.azureml.doctor import diagnose, skinny_mismatch
from trackbridge.backends.azureml.options import AzureOptions
from trackbridge.backends.base import RegistryScheme
from trackbridge.errors import ConfigError, TransientBackendError

SUB, RG, WS = "sub-1", "rg-1", "ws-1"
SCOPE = f"/subscriptions/{SUB}/resourceGroups/{RG}/providers/Microsoft.MachineLearningServices/workspaces/{WS}"
SECRET = "s3cr3t-value-never-printed"


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    workspace.forget_cached_uris()


def _opts(**extra: object) -> dict:
    return {"subscription_id": SUB, "resource_group": RG, "workspace": WS, **extra}


def test_workspace_from_env_and_options_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_SUBSCRIPTION_ID", "env-sub")
    monkeypatch.setenv("AZURE_RESOURCE_GROUP", "env-rg")
    monkeypatch.setenv("AZUREML_WORKSPACE_NAME", "env-ws")
    opts = AzureOptions.from_options({"workspace": "opt-ws"})
    assert (opts.subscription_id, opts.resource_group, opts.workspace) == ("env-sub", "env-rg", "opt-ws")
    assert opts.scope.endswith("/resourceGroups/env-rg/providers/Microsoft.MachineLearningServices/workspaces/opt-ws")


def test_missing_pieces_are_explained_one_line_each() -> None:
    opts = AzureOptions.from_options({"workspace": "w"})
    lines = opts.missing()
    assert len(lines) == 2 and all("\n" not in line for line in lines)
    assert "AZURE_SUBSCRIPTION_ID" in lines[0] and "AZURE_RESOURCE_GROUP" in lines[1]
    with pytest.raises(ConfigError, match="AZURE_SUBSCRIPTION_ID"):
        opts.require_workspace()


@pytest.mark.parametrize("endpoint", ["westeurope.api.azureml.ms", "ftp://x", "https://"])
def test_bad_endpoint_is_a_config_error(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="endpoint"):
        AzureOptions.from_options(_opts(endpoint=endpoint))


def test_endpoint_gives_the_plugin_uri_without_any_lookup() -> None:
    backend = AzureMLBackend(_opts(endpoint="https://privatelink.example.net:8443/ignored/path", token="t"))
    assert backend.connection.tracking_uri == f"azureml://privatelink.example.net:8443/mlflow/v2.0{SCOPE}"
    assert backend.connection._context.host_url == "https://privatelink.example.net:8443"
    assert backend.connection._context.cloud.name == "AzureCloud"


def test_token_env_unset_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="TB_NOPE"):
        AzureOptions.from_options(_opts(token_env="TB_NOPE"))


# -- credential choice ----------------------------------------------------------


def _fake_az(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, script: str) -> Path:
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    az = bindir / "az"
    az.write_text("#!/bin/sh\n" + script)
    az.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}/usr/bin{os.pathsep}/bin")
    return az


def _set_sp(monkeypatch: pytest.MonkeyPatch, client: str = "app-id", tenant: str = "tenant-id") -> None:
    monkeypatch.setenv("AZURE_CLIENT_ID", client)
    monkeypatch.setenv("AZURE_TENANT_ID", tenant)
    monkeypatch.setenv("AZURE_CLIENT_SECRET", SECRET)


def test_order_token_then_service_principal_then_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    az = _fake_az(tmp_path, monkeypatch, "exit 1\n")
    _set_sp(monkeypatch)
    monkeypatch.setenv("TB_TOK", SECRET)
    assert credentials.choose(AzureOptions.from_options(_opts(token_env="TB_TOK"))).kind == "token"
    sp = credentials.choose(AzureOptions.from_options(_opts()))
    assert sp.kind == "service_principal" and "app-id" in sp.description and SECRET not in sp.description
    monkeypatch.delenv("AZURE_CLIENT_SECRET")
    cli = credentials.choose(AzureOptions.from_options(_opts()))
    assert cli.kind == "cli" and str(az) in cli.description
    # a named credential wins over the order
    assert credentials.choose(AzureOptions.from_options(_opts(credential="cli", token="t"))).kind == "cli"


def test_no_credential_says_what_to_set_and_never_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setenv("AZURE_CLIENT_ID", "app-id")  # a managed identity's id alone does not select it
    with pytest.raises(ConfigError) as info:
        credentials.choose(AzureOptions.from_options(_opts()))
    message = str(info.value)
    assert "token_env" in message and "AZURE_CLIENT_SECRET" in message and "az login" in message
    assert "missing: AZURE_TENANT_ID, AZURE_CLIENT_SECRET" in message
    named = credentials.choose(AzureOptions.from_options(_opts(credential="managed-identity")))
    assert named.kind == "managed_identity"


def test_real_azure_identity_classes_are_built_bounded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from azure.identity import AzureCliCredential, ClientSecretCredential

    _set_sp(monkeypatch)
    opts = AzureOptions.from_options(_opts(cloud="AzureChinaCloud", credential_timeout=7))
    sp = credentials.build(opts)
    assert isinstance(sp, credentials.BoundedCredential) and isinstance(sp.inner, ClientSecretCredential)
    assert sp.timeout == 7 and sp.inner._authority == "https://login.chinacloudapi.cn"
    _fake_az(tmp_path, monkeypatch, "exit 1\n")
    cli = credentials.build(AzureOptions.from_options(_opts(credential="cli", credential_timeout=3)))
    assert isinstance(cli.inner, AzureCliCredential) and cli.inner._process_timeout == 3


def test_a_hanging_azure_cli_cannot_hang_the_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real AzureCliCredential runs a fake ``az`` that never answers: bounded."""
    _fake_az(tmp_path, monkeypatch, "sleep 60\n")
    cred = credentials.build(AzureOptions.from_options(_opts(credential="cli", credential_timeout=2)))
    started = time.monotonic()
    with pytest.raises(Exception) as info:
        cred.get_token("https://management.azure.com/.default")
    assert time.monotonic() - started < 15
    assert type(info.value).__name__ in ("CredentialUnavailableError", "TransientBackendError", "ClientAuthenticationError")


def test_bounded_credential_cuts_off_a_slow_token() -> None:
    class Slow:
        def get_token(self, *scopes: str, **kwargs: object) -> object:
            time.sleep(3)

    cred = credentials.BoundedCredential(Slow(), 0.2, "slow test credential")
    started = time.monotonic()
    with pytest.raises(TransientBackendError, match="credential_timeout"):
        cred.get_token("scope")
    assert time.monotonic() - started < 2


def test_static_token_credential_speaks_azure_core() -> None:
    cred = credentials.StaticTokenCredential(SECRET)
    assert cred.get_token("s").token == SECRET and cred.get_token_info("s").token == SECRET
    assert SECRET not in repr(cred)


# -- workspace lookup through azure-ai-ml with a local ARM stand-in --------------


class _Arm:
    """A ``requests`` adapter answering ARM's GET of a workspace (documented response shape)."""

    def __init__(self, status: int = 200) -> None:
        self.status = status
        self.seen: list[tuple[str, str, str | None]] = []

    def adapter(self):  # noqa: ANN201
        import requests.adapters
        import urllib3
        from requests.models import Response

        arm = self

        class Adapter(requests.adapters.BaseAdapter):
            def send(self, request, **kwargs):  # noqa: ANN001, ANN201
                arm.seen.append((request.method, request.url, request.headers.get("Authorization")))
                body = {
                    "id": SCOPE, "name": WS, "type": "Microsoft.MachineLearningServices/workspaces",
                    "location": "westeurope", "kind": "Default",
                    "properties": {"friendlyName": WS, "workspaceId": "0000-ws",
                                   "discoveryUrl": "https://westeurope.api.azureml.ms/discovery",
                                   "mlFlowTrackingUri": f"azureml://westeurope.api.azureml.ms/mlflow/v1.0{SCOPE}"},
                } if arm.status == 200 else {"error": {"code": "ResourceNotFound" if arm.status == 404 else "AuthorizationFailed",
                                                        "message": "nope"}}
                data = json.dumps(body).encode()
                response = Response()
                response.status_code, response.request, response.url = arm.status, request, request.url
                response.raw = urllib3.HTTPResponse(body=io.BytesIO(data), headers={"Content-Type": "application/json"},
                                                    status=arm.status, preload_content=False)
                response._content = data
                response.headers["Content-Type"] = "application/json"
                return response

            def close(self) -> None:
                pass

        return Adapter()

    def transport(self):  # noqa: ANN201
        import requests
        from azure.core.pipeline.transport import RequestsTransport

        session = requests.Session()
        session.mount("https://", self.adapter())
        return RequestsTransport(session=session)


def test_tracking_uri_from_arm_through_mlclient_cached_and_seeded() -> None:
    arm = _Arm()
    backend = AzureMLBackend(_opts(token=SECRET, arm_transport=arm.transport()))
    assert arm.seen == []  # nothing before first use
    uri = backend.connection.tracking_uri
    assert uri == f"azureml://westeurope.api.azureml.ms/mlflow/v2.0{SCOPE}"
    [(method, url, auth)] = arm.seen
    assert method == "GET" and url.startswith(f"https://management.azure.com{SCOPE}?api-version=")
    assert auth == f"Bearer {SECRET}"
    from azureml.mlflow._internal.service_context_loader import _AzureMLServiceContextLoader

    context = _AzureMLServiceContextLoader.get_service_context(uri)
    assert context.host_url == "https://westeurope.api.azureml.ms" and context.auth is backend.connection.credential
    assert context.cloud.name == "AzureCloud"  # named: no cloud-metadata request
    again = AzureMLBackend(_opts(token=SECRET, arm_transport=arm.transport()))
    assert again.connection.tracking_uri == uri and len(arm.seen) == 1  # cached per process


@pytest.mark.parametrize("status, words", [(404, "was not found"), (403, "may not read")])
def test_arm_refusals_say_what_to_check(status: int, words: str) -> None:
    backend = AzureMLBackend(_opts(token=SECRET, arm_transport=_Arm(status).transport()))
    with pytest.raises(ConfigError, match=words) as info:
        backend.connection.tracking_uri  # noqa: B018
    assert SECRET not in str(info.value)


# -- declarations ---------------------------------------------------------------


def test_features_and_limits_are_azures() -> None:
    features = AzureMLBackend.features
    from trackbridge.backends.mlflow.backend import MlflowBackend

    assert features.lacks() - MlflowBackend.features.lacks() == {"settable_user", "model_metadata"}
    assert features.system_tag_prefixes == ("mlflow.", "azureml.") and features.registry is RegistryScheme.INTEGER
    limits = AzureMLBackend(_opts(endpoint="http://127.0.0.1:9", token="t")).writer().limits
    assert (limits.max_metrics_per_batch, limits.max_tags_per_run, limits.max_tag_value_length) == (250, 50, 1000)
    assert AzureMLBackend.info.name == "azureml" and AzureMLBackend(_opts(token="t")).name == "azureml"


def test_importing_the_backend_imports_no_sdk() -> None:
    code = ("import sys, trackbridge.backends.azureml.backend as b; b.AzureMLBackend.features; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('mlflow', 'azure', 'azureml')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- doctor -----------------------------------------------------------------------


def test_diagnose_shows_credential_and_uri_without_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TB_TOK", SECRET)
    lines = AzureMLBackend(_opts(endpoint="http://127.0.0.1:9", token_env="TB_TOK")).diagnose()
    text = "\n".join(lines)
    assert "credential: static bearer token from $TB_TOK" in text
    assert f"tracking URI: azureml://127.0.0.1:9/mlflow/v2.0{SCOPE} (from endpoint)" in text
    assert SECRET not in text


def test_diagnose_resolves_through_arm_when_asked(monkeypatch: pytest.MonkeyPatch) -> None:
    arm = _Arm()
    lines = diagnose(_opts(token=SECRET, arm_transport=arm.transport()), resolve=True)
    assert any(line.startswith("tracking URI: azureml://westeurope.api.azureml.ms/") for line in lines)
    assert diagnose(_opts(token=SECRET), resolve=False)[-1].startswith("tracking URI: looked up in ARM on first use")


def test_diagnose_explains_missing_pieces_in_one_line_each(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    lines = diagnose({})
    assert sum("AZURE_SUBSCRIPTION_ID" in line for line in lines) == 1
    assert any(line.startswith("Azure ML: no credential found") for line in lines)
    assert all("\n" not in line for line in lines)


def test_skinny_mismatch_names_the_repair() -> None:
    assert skinny_mismatch({"mlflow": "3.17.2", "mlflow-skinny": "3.17.2", "azureml-mlflow": "1.60.0"}) is None
    message = skinny_mismatch({"mlflow": "3.17.2", "mlflow-skinny": "3.15.0", "azureml-mlflow": "1.62.0"})
    assert message is not None and "mlflow is broken" in message
    assert "pip install 'mlflow-skinny==3.17.2' 'azureml-mlflow<1.62'" in message
    plain = skinny_mismatch({"mlflow": "3.17.2", "mlflow-skinny": "3.16.0", "azureml-mlflow": None})
    assert plain is not None and plain.endswith("pip install 'mlflow-skinny==3.17.2'")
    assert skinny_mismatch() is None  # this venv: installed in one command, consistent


def test_workspace_artifact_uris_use_this_connections_context() -> None:
    """``azureml://`` run artifacts are opened with the remote's own service context, not
    through the process's global tracking URI (which trackbridge never sets)."""
    backend = AzureMLBackend(_opts(endpoint="https://westeurope.api.azureml.ms", token=SECRET))
    uri = (f"azureml://westeurope.api.azureml.ms/mlflow/v2.0{SCOPE}/experiments/exp-1/runs/run-9/artifacts/model")
    repo = backend.connection.artifact_repo(uri)
    assert type(repo).__name__ == "AzureMLflowArtifactRepository"
    client = repo.artifacts
    assert type(client).__name__ == "RunArtifactsClient"
    assert (client._experiment_name, client._run_id, client.path) == ("exp-1", "run-9", "model")
    assert client._service_context is backend.connection._context
    assert client._service_context.auth is backend.connection.credential
