"""Everything a W&B run can hold, and where each piece goes in the canonical run.

One table (:data:`COVERAGE`) for the readers, the writers, ``plan`` and the docs: every
kind of record in a ``.wandb`` log (the oneof of ``wandb_internal_pb2.Record``), every
request kind a log can hold (``Request``), every history value ``_type`` of
``wandb.sdk.data_types`` (the classes' ``_log_type`` and the list forms), and the
fields of ``define_metric`` and of artifacts, each either mapped (``"-> <canonical
field>"``) or ``"not carried: <reason>"`` (what ``plan`` shows for what a copy drops).
``tests/test_wandb_coverage.py`` lists the installed wandb's kinds and fails on any this
table does not classify, so a wandb upgrade cannot add a kind that copies lose
silently.  Nothing here imports wandb.
"""
from __future__ import annotations

#: ``Record`` oneof ``record_type`` -> where it goes.
RECORDS: dict[str, str] = {
    "run": "-> run fields: id, project (experiment), name, group/job type (tags wandb.group/wandb.job_type), "
           "tags (labels), notes, start time, config; later run records update them",
    "history": "-> metric series (step: trackbridge/step, else the key's define_metric step metric, else _step; "
               "_timestamp) and media series (values with a _type, see history:*)",
    "summary": "-> summary (values the user set); W&B's copies of series and media values are the series'",
    "config": "-> params (nested kept); trackbridge.* keys are bookkeeping (tags, inputs, registry...)",
    "files": "-> artifacts at their path in the run's files (wandb's own files and media files apart)",
    "stats": "-> system metrics system/<key>",
    "artifact": "-> logged models (type model), table media (type run_table), artifact files + artifact_meta",
    "use_artifact": "-> dataset inputs (source_type wandb-artifact)",
    "metric": "-> tag wandb.define_metric; step_metric -> the series' step",
    "exit": "-> status (0 FINISHED, 255 KILLED, other FAILED) and end time (start + runtime)",
    "output": "not carried: console output the SDK captures, not run data",
    "output_raw": "not carried: console output the SDK captures, not run data",
    "output_logger": "not carried: console output the SDK captures, not run data",
    "telemetry": "not carried: the SDK's usage telemetry, not run data",
    "environment": "not carried: host details the SDK collects itself (OS, Python, GPU)",
    "tbrecord": "not carried: a TensorBoard log dir to sync; its events are in history when synced",
    "alert": "not carried: a notification W&B sent (run.alert), no canonical field",
    "final": "not carried: the log's end marker",
    "header": "not carried: the log's version header",
    "footer": "not carried: the log's end marker",
    "preempting": "not carried: a signal that the run may be resumed elsewhere",
    "noop_link_artifact": "not carried: an empty link the SDK writes for sync bookkeeping",
    "request": "-> see request:* (only link_artifact holds run data)",
}

#: ``Request`` oneof ``request_type`` -> where it goes.  Requests are the SDK talking to
#: wandb-core; only a link lands in a log as data.
REQUESTS: dict[str, str] = {
    "link_artifact": "-> registry versions and aliases (with config trackbridge.registry)",
    **{name: "not carried: a request between the SDK and wandb-core, no run data" for name in (
        "stop_status", "network_status", "defer", "get_summary", "login", "pause", "resume", "poll_exit",
        "sampled_history", "partial_history", "history_step", "run_start", "check_version", "log_artifact",
        "download_artifact", "keepalive", "run_status", "cancel", "internal_messages", "python_packages",
        "shutdown", "attach", "status", "server_info", "sender_mark", "sender_read", "status_report",
        "summary_record", "telemetry_record", "job_info", "get_system_metrics", "job_input", "sync_finish",
        "operations", "probe_system_info", "test_inject")},
}

#: history value ``_type`` -> where it goes.
HISTORY_TYPES: dict[str, str] = {
    "histogram": "-> media kind histogram (data bins/values)",
    "image-file": "-> media kind image (file, caption, meta format/width/height)",
    "images/separated": "-> media kind image, one point per image of the list",
    "table-file": "-> media kind table (data = the table file's columns/data)",
    "table": "-> media kind table (a Table in history is written as table-file)",
    "incremental-table-file": "-> media kind table, each point the rows added at its step (meta log_mode)",
    "audio-file": "-> media kind audio (file, caption, meta)",
    "audio": "-> media kind audio, one point per clip of the list",
    "video-file": "-> media kind video (file, caption, meta)",
    "videos": "-> media kind video, one point per video of the list",
    "html-file": "-> media kind html (file)",
    "html": "-> media kind html, one point per page of the list",
    "plotly-file": "-> media kind plotly (data = the figure's JSON)",
    "object3D-file": "-> media kind object3d (file)",
    "object3D": "-> media kind object3d, one point per object of the list",
    "molecule-file": "-> media kind molecule (file)",
    "molecule": "-> media kind molecule, one point per molecule of the list",
    "bokeh-file": "not carried: a Bokeh plot, no canonical media kind (history:* unread)",
    "graph-file": "not carried: a model graph (wandb.watch), no canonical media kind",
    "wb_trace_tree": "not carried: an LLM trace tree, no canonical media kind",
    "partitioned-table": "not carried: a table spread over artifact parts, no canonical media kind",
    "joined-table": "not carried: a join of two artifact tables, no canonical media kind",
    "eval-table": "not carried: an evaluation table backed by Weave, no canonical media kind",
    "pytorch-model-file": "not carried: a model saved as a history value, no canonical media kind",
    "sklearn-model-file": "not carried: a model saved as a history value, no canonical media kind",
    "tfkeras-model-file": "not carried: a model saved as a history value, no canonical media kind",
    "bounding-boxes": "-> an image point's meta (boxes); the box files are not carried",
    "mask": "-> an image point's meta (masks); the mask files are not carried",
    "classes": "-> an image point's meta (class ids); the class set artifact is not carried",
}

#: fields of the records that hold more than one canonical field.
FIELDS: dict[str, str] = {
    # define_metric (MetricRecord)
    "metric.name": "-> tag wandb.define_metric (name)",
    "metric.glob_name": "-> tag wandb.define_metric (glob)",
    "metric.step_metric": "-> the series' step (that key's value in the row); tag wandb.define_metric",
    "metric.summary": "-> tag wandb.define_metric (summary); W&B destinations compute that summary again",
    "metric.goal": "-> tag wandb.define_metric (goal)",
    "metric.options.hidden": "-> tag wandb.define_metric (hidden)",
    "metric.options.defined": "not carried: wandb-core's mark of a user definition; every carried one is",
    "metric.options.step_sync": "not carried: the SDK copies the step metric into each row; the step is carried",
    "metric.step_metric_index": "not carried: wandb-core's index of step_metric; the name is carried",
    "metric.expanded_from_glob": "not carried: wandb-core's bookkeeping; the glob is carried",
    # artifacts (ArtifactRecord)
    "artifact.type": "-> artifact_meta[path].type (model: a logged model; run_table: table media)",
    "artifact.name": "-> its files' folder wandb-artifacts/<name>; a logged model's name",
    "artifact.description": "-> artifact_meta[path].description",
    "artifact.metadata": "-> artifact_meta[path].metadata; key trackbridge.model -> the logged model's metadata",
    "artifact.aliases": "-> artifact_meta[path].aliases (but W&B's own latest)",
    "artifact.tags": "-> artifact_meta[path].tags",
    "artifact.manifest": "-> the artifact's files (path, size, md5 digest)",
    "artifact.client_id": "-> a logged model's model_id (what registry links name)",
    "artifact.finalize": "-> a logged model's status READY (committed)",
    "artifact.run_id": "-> the run holding it",
    "artifact.project": "-> the run's experiment",
    "artifact.entity": "not carried: the W&B account; a destination has its own",
    "artifact.digest": "not carried: follows from the files (each file's digest is carried)",
    "artifact.digest_algorithm": "not carried: how the digest above is made",
    "artifact.sequence_client_id": "not carried: the SDK's id of the collection, made again by a writer",
    "artifact.base_id": "not carried: the version an incremental artifact started from; its files are carried",
    "artifact.incremental_beta1": "not carried: how the SDK built the version; its files are carried",
    "artifact.user_created": "not carried: SDK bookkeeping of who made the artifact object",
    "artifact.use_after_commit": "not carried: SDK bookkeeping for a later use_artifact",
    "artifact.distributed_id": "not carried: a grouping id for artifacts logged from several processes",
    "artifact.ttl_duration_seconds": "not carried: a retention period of the server's, no canonical field",
    # the run (RunRecord)
    "run.run_id": "-> run id",
    "run.entity": "not carried: the W&B account; a destination has its own",
    "run.project": "-> experiment",
    "run.config": "-> params",
    "run.summary": "-> summary",
    "run.run_group": "-> tag wandb.group",
    "run.job_type": "-> tag wandb.job_type",
    "run.display_name": "-> name",
    "run.notes": "-> notes",
    "run.tags": "-> labels",
    "run.start_time": "-> start time",
    "run.runtime": "-> end time (start + runtime)",
    "run.settings": "not carried: the SDK's settings of that process",
    "run.sweep_id": "not carried: the W&B sweep that launched the run, no canonical field",
    "run.host": "not carried: the machine the SDK ran on",
    "run.git": "not carried: git details the SDK collects itself",
    "run.telemetry": "not carried: the SDK's usage telemetry",
    "run.starting_step": "not carried: where a resumed run's _step went on (rows keep their own)",
    "run.storage_id": "not carried: the server's id of the run",
    "run.resumed": "not carried: the run was resumed; its records are read whole",
    "run.resume": "not carried: how the SDK was asked to resume",
    "run.forked": "not carried: the run forked from another (fork_from), no canonical field",
    "run.branch_point": "not carried: where a forked or rewound run branched, no canonical field",
    # media values beside their payload
    "media.artifact_path": "not carried: the SDK's client reference to its run_table artifact",
    "media.sha256": "not carried: follows from the file's bytes (check compares files by sha256)",
    "media.size": "not carried: follows from the file's bytes",
    "media.ncols": "not carried: follows from the table's data",
    "media.nrows": "not carried: follows from the table's data",
}

#: every kind and field, keyed ``<table>:<name>``.
COVERAGE: dict[str, str] = {
    **{f"record:{k}": v for k, v in RECORDS.items()},
    **{f"request:{k}": v for k, v in REQUESTS.items()},
    **{f"history:{k}": v for k, v in HISTORY_TYPES.items()},
    **{f"field:{k}": v for k, v in FIELDS.items()},
}


def counts() -> tuple[int, int]:
    """(mapped, declared not carried) over :data:`COVERAGE`."""
    mapped = sum(1 for v in COVERAGE.values() if v.startswith("->"))
    return mapped, len(COVERAGE) - mapped
