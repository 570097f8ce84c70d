"""``AzureMLBackend``: one Azure ML workspace, tracked through MLflow and the
``azureml-mlflow`` plugin.

It *is* the MLflow backend (:class:`~trackbridge.backends.mlflow.backend.MlflowBackend`)
with its own name (``azureml`` in provenance and ``RunRecord.platform``), its own
:class:`Features` (what Azure cannot hold, declared, so ``plan`` lists it and
``check`` accepts it), its own writer limits (:func:`~.writer.azure_limits`) and
its own connection (workspace resolution and Azure credentials,
:mod:`~.connection`).  Options: see :mod:`~.options`; plus ``aliases`` =
``auto`` (default: native aliases, recorded version tags where the workspace
refuses them), ``native`` or ``tags``.

Importing this module imports no Azure SDK and no mlflow.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from trackbridge.backends.azureml.connection import AzureMLConnection
from trackbridge.backends.azureml.info import INFO
from trackbridge.backends.azureml.reader import AzureMLReader
from trackbridge.backends.azureml.writer import AzureMLWriter, azure_limits
from trackbridge.backends.base import Backend, BackendInfo, Features, Limits
from trackbridge.backends.mlflow.backend import MlflowBackend

#: tag prefixes Azure ML writes itself: its bookkeeping, not the user's tags.
SYSTEM_TAG_PREFIXES = ("mlflow.", "azureml.")


class AzureMLBackend(MlflowBackend):
    """An Azure ML workspace; reader and writer share one MLflow client."""

    info: ClassVar[BackendInfo] = INFO
    features: ClassVar[Features] = replace(
        # mlflow.user is set by Azure to the caller's identity: the source's user is
        # kept in trackbridge.source.user by the engine.  Logged models' own params,
        # metrics, tags, type and status: Microsoft's MLflow support matrices do not list
        # MLflow 3 logged models, and a workspace without their API keeps a model as
        # files of the run (the writer's fallback), where none of them fit: declared
        # not kept (they are written where the API answers).  Stages are supported
        # (``how-to-manage-models-mlflow.md``): inherited.
        MlflowBackend.features.disable("settable_user", "model_metadata"),
        system_tag_prefixes=SYSTEM_TAG_PREFIXES,
    )

    def __init__(self, options: Mapping[str, Any] | None = None) -> None:
        Backend.__init__(self, options)
        self.connection = AzureMLConnection(self.options)

    def reader(self) -> AzureMLReader:
        return AzureMLReader(self.connection, self.name)

    def limits(self) -> Limits:
        return azure_limits()

    def writer(self) -> AzureMLWriter:
        return AzureMLWriter(self.connection, self.name, aliases=str(self.options.get("aliases") or "auto"))

    def describe(self) -> str:
        """Where this remote points, without an ARM request and without secrets."""
        opts = self.connection.azure
        where = "/".join(x or "?" for x in (opts.subscription_id, opts.resource_group, opts.workspace))
        host = opts.endpoint or "its region's host (looked up in ARM)"
        return f"azureml workspace {where} at {host}"

    def diagnose(self, resolve: bool = False) -> list[str]:  # type: ignore[override]
        """Lines for ``trackbridge doctor``: credential, tracking URI, install state
        (see :func:`trackbridge.backends.azureml.doctor.diagnose`)."""
        from trackbridge.backends.azureml.doctor import diagnose

        return diagnose(self.options, resolve=resolve)
