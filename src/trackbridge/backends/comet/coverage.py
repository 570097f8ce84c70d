"""Everything a Comet experiment can hold, and where each piece goes in the canonical run.

One table (:data:`COVERAGE`) for the readers, the writers, ``plan`` and the docs: every
message type comet_ml writes to an offline archive (``comet_ml/messages.py``), every
asset upload type (``comet_ml/constants.py``: ``ASSET_TYPE_*``) and every field those
messages carry is either mapped (``"-> <canonical field>"``) or ``"not carried:
<reason>"``; the reason is what ``plan`` shows for what a source holds and a copy drops.
A test lists the installed SDK's message types, upload types and message fields and
fails on any this table does not classify, so an SDK upgrade cannot add a kind that
copies silently lose.  Nothing here imports comet_ml.
"""
from __future__ import annotations

#: message type -> where it goes.
MESSAGES: dict[str, str] = {
    "parameter_msg": "-> params (curr_step/curr_epoch are SDK bookkeeping, not carried)",
    "metric_msg": "-> metric series (epoch -> series 'epoch'; sys.* -> system metrics)",
    "log_other": "-> key/value tags; SDK others are bookkeeping (Name -> run name); trackbridge.* -> notes/status/summary",
    "file_upload": "-> artifacts, model files, media series and asset metadata, by upload type (upload:*)",
    "register_model": "-> registry versions (semver, status -> stage, tags, comment -> description)",
    "remote_model": "-> a logged model (name only; its remote URIs are not copied)",
    "ws_msg": "-> only its log_other part (legacy SDKs), as log_other",
    "html": "-> media series 'html' (kind html), one point per message in order",
    "htmlOverride": "-> media series 'html' (kind html), meta {'override': true}",
    "remote_file": "not carried: a link to a file stored elsewhere (log_remote_asset): no bytes to copy",
    "os_packages": "not carried: environment details the SDK collects itself, not run data",
    "graph": "not carried: model graph text for Comet's Graph tab: no canonical field",
    "system_details": "not carried: environment details the SDK collects itself (OS, host, Python, command)",
    "cloud_details": "not carried: cloud-metadata details the SDK probes itself",
    "file_name": "not carried: the launching script's file name, recorded by the SDK",
    "installed_packages": "not carried: environment details the SDK collects itself (pip list)",
    "gpu_static_info": "not carried: environment details the SDK collects itself",
    "git_metadata": "not carried: git details the SDK collects itself",
    "system_info": "not carried: log_system_info: environment details, kept apart from user data",
    "standard_output": "not carried: console output the SDK captures, not run data",
    "log_dependency": "not carried: environment details (log_dependency)",
    "3d-image": "not carried: 3D point clouds for Comet's panels (log_points_3d): no canonical media kind reads them",
    "close": "not carried: an in-process signal of the SDK, never written to an archive",
}

#: ``file_upload`` ``upload_type`` -> where it goes.
UPLOADS: dict[str, str] = {
    "asset": "-> artifact at its fileName; its metadata -> artifact_meta[path] = {'metadata': ...}",
    "model-element": "-> files of the logged model groupingName; its metadata -> the model's params/metadata",
    "histogram3d": "-> media series <fileName> (kind histogram), one point per step; Comet's bins as edges",
    "visualization": "-> media series <figName> (kind image), one point per log_image",
    "text-sample": "-> media series 'text' (kind text), data = the text; its metadata -> meta",
    "audio": "-> media series <fileName> (kind audio), the file; its metadata -> meta",
    "video": "-> media series <fileName> (kind video), the file; its metadata -> meta",
    "curve": "-> artifact curve/<fileName> (Comet's x/y JSON: no canonical media kind)",
    "confusion-matrix": "-> artifact confusion-matrix/<fileName> (Comet's matrix JSON)",
    "embeddings": "-> artifact embeddings/<fileName>",
    "dataframe": "-> artifact dataframe/<fileName>",
    "dataframe-profile": "-> artifact dataframe-profile/<fileName>",
    "notebook": "-> artifact notebook/<fileName>",
    "tensorflow-file": "-> artifact tensorflow-file/<fileName>",
    "asset-item": "-> artifact asset-item/<fileName>",
    "git-patch": "-> artifact git-patch/<fileName>",
    "conda-environment-definition": "-> artifact conda-environment-definition/<fileName>",
    "conda-specification": "-> artifact conda-specification/<fileName>",
    "conda-info": "-> artifact conda-info/<fileName>",
    "3d-image": "not carried: 3D point clouds for Comet's panels: no canonical media kind reads them",
    "source_code": "not carried: the SDK's automatic copy of the launching script",
}

#: ``<message type>.<field>`` -> where it goes (fields of the messages that are carried;
#: the SDK's in-process callbacks are never written and are not listed).
FIELDS: dict[str, str] = {
    "file_upload.file_path": "-> the bytes (the archive member)",
    "file_upload.file_like": "-> the bytes (written to an archive member by the SDK)",
    "file_upload.upload_type": "-> which canonical field (upload:*)",
    "file_upload.additional_params": "-> fileName -> path, step -> media step, groupingName -> model, figName -> media key",
    "file_upload.metadata": "-> artifact_meta / model metadata / media meta, by upload type",
    "file_upload.size": "not carried: the SDK's own size check (the bytes are copied)",
    "file_upload.clean": "not carried: whether the SDK deletes its temporary file",
    "file_upload.critical": "not carried: the SDK's retry policy for the upload",
    "register_model.experiment_id": "-> the version's run",
    "register_model.model_name": "-> the version's logged model (the experiment's model: its files)",
    "register_model.version": "-> version (semver)",
    "register_model.workspace": "not carried: the uploader's workspace decides where it lands",
    "register_model.registry_name": "-> registered model name",
    "register_model.public": "not carried: Comet's sharing setting, not model data",
    "register_model.description": "-> registered model description",
    "register_model.comment": "-> version description",
    "register_model.tags": "-> version tags (k=v), aliases (alias:a) and the model's tags (model:k=v)",
    "register_model.status": "-> version stage",
    "register_model.stages": "not carried: deprecated by comet_ml (ignored by Comet; tags replace it)",
    "register_model.metadata": "not carried: version metadata: ModelVersion has no such field",
    "register_model.status_configuration": "not carried: Comet's status workflow settings: no canonical field",
    "remote_model.model_name": "-> logged model name",
    "remote_model.remote_assets": "not carried: links to files stored elsewhere: no bytes to copy",
    "log_other.key": "-> tag key",
    "log_other.value": "-> tag value (JSON text for non-strings)",
    "metric_msg.context": "not carried: the SDK's context prefix is already in the metric name",
    "metric_msg.timestamp": "-> point timestamp",
    "parameter_msg.context": "not carried: the SDK's context prefix is already in the parameter name",
    "parameter_msg.timestamp": "not carried: params have no time",
}

#: the whole table, one key per kind: ``message:<type>``, ``upload:<type>``, ``field:<msg>.<field>``.
COVERAGE: dict[str, str] = {
    **{f"message:{k}": v for k, v in MESSAGES.items()},
    **{f"upload:{k}": v for k, v in UPLOADS.items()},
    **{f"field:{k}": v for k, v in FIELDS.items()},
}

NOT_CARRIED_PREFIX = "not carried: "


def carried(entry: str) -> bool:
    """Whether a table value maps the kind into the canonical run."""
    return entry.startswith("->")


def reason(table: dict[str, str], kind: str, default: str) -> str:
    """Why ``kind`` is not carried (for ``RunRecord.unread``); ``default`` for a kind the
    table does not know (an archive written by a newer SDK)."""
    entry = table.get(kind)
    if entry is None or carried(entry):
        return default
    return entry[len(NOT_CARRIED_PREFIX):]


def counts() -> tuple[int, int]:
    """(mapped, declared not carried) over the whole table, for the docs and the report."""
    mapped = sum(1 for v in COVERAGE.values() if carried(v))
    return mapped, len(COVERAGE) - mapped
