"""What of MLflow the MLflow reader carries, and what it does not, with why.

``COVERAGE`` maps every field of the entities a run, its models and the registry are
made of (``"<Entity>.<field>"``, the properties of ``mlflow.entities`` classes named
in :data:`FIELD_ENTITIES`) and every other kind ``mlflow.entities`` defines
(``"<Kind>"``) to ``"-> <canonical field>"`` or ``"not carried: <reason>"``.
``tests/test_mlflow_coverage.py`` enumerates the installed mlflow and fails on a field
or kind missing here, so a new MLflow cannot add something that copies lose silently.
Rows ``"<Entity>.tags[<key>]"`` say what becomes of MLflow's own tags that are fields.

Carried means read into the canonical model (:mod:`trackbridge.model`) and written
back by the MLflow writer; the reason of a row that is not carried is what ``plan``
and the docs say.  What a run holds at read time and is not carried also goes into
``RunRecord.unread`` (see :mod:`~trackbridge.backends.mlflow.logged_models`).
"""
from __future__ import annotations

#: classes whose every property is listed field by field.
FIELD_ENTITIES = (
    "Run", "RunInfo", "RunData", "RunInputs", "RunOutputs", "Metric", "Param", "RunTag",
    "Dataset", "DatasetInput", "InputTag", "Experiment", "ExperimentTag", "FileInfo",
    "LoggedModel", "LoggedModelInput", "LoggedModelOutput", "LoggedModelParameter", "LoggedModelTag",
    "ModelVersion", "ModelVersionTag", "RegisteredModel", "RegisteredModelTag", "RegisteredModelAlias",
)

_OWN = "not carried: the destination sets its own when it stores the copy"
_DERIVED = "not carried: derived by MLflow from fields that are carried"
_GENAI = ("not carried: GenAI tracing and evaluation (traces, spans, assessments, sessions, scorers), "
          "kept per experiment outside runs; trackbridge copies runs, models and the registry")
_GATEWAY = "not carried: AI gateway / MCP server configuration, a deployment's settings, not a run's record"
_PROMPTS = "not carried: the prompt registry (prompts and their versions) is not copied"
_WORKSPACES = "not carried: server workspaces and webhooks are the destination server's own configuration"
_VALUE = "not carried: a value type or enum of MLflow's API, not data of its own"
_DEPLOY = "not carried: Databricks deployment jobs, which only Databricks runs"
_EVAL_DATA = "not carried: GenAI evaluation datasets (records kept per experiment, not per run)"

COVERAGE: dict[str, str] = {
    # -- runs ------------------------------------------------------------------
    "Run.info": "-> RunRecord (the RunInfo.* rows)",
    "Run.data": "-> RunRecord.params / tags / metrics (the RunData.* rows)",
    "Run.inputs": "-> RunRecord.inputs (the RunInputs.* rows)",
    "Run.outputs": "-> RunRecord.models (the RunOutputs.* rows)",
    "RunInfo.run_id": "-> RunRecord.run_id (a copy names it in tag trackbridge.source.run_id)",
    "RunInfo.run_name": "-> RunRecord.name",
    "RunInfo.experiment_id": "-> RunRecord.experiment_id / experiment (copies go by the experiment's name)",
    "RunInfo.user_id": "-> RunRecord.user (with tag mlflow.user; MLflow's placeholder 'unknown' is no user)",
    "RunInfo.status": "-> RunRecord.status",
    "RunInfo.start_time": "-> RunRecord.start_time",
    "RunInfo.end_time": "-> RunRecord.end_time",
    "RunInfo.artifact_uri": "not carried: where this store keeps the run's files; the files are copied "
                            "to the destination's own location",
    "RunInfo.lifecycle_stage": "not carried: deleted runs are not read (a deleted run reads as gone)",
    "RunData.params": "-> RunRecord.params",
    "RunData.metrics": "-> RunRecord.metrics / system_metrics (keys under system/); every point through "
                       "Reader.iter_metric_history",
    "RunData.tags": "-> RunRecord.tags (but the mlflow.* tags below, which are fields)",
    "RunData.tags[mlflow.runName]": "-> RunRecord.name",
    "RunData.tags[mlflow.user]": "-> RunRecord.user",
    "RunData.tags[mlflow.parentRunId]": "-> RunRecord.parent_run_id (re-pointed to the parent's copy)",
    "RunData.tags[mlflow.note.content]": "-> RunRecord.notes",
    "RunData.tags[mlflow.log-model.history]": "-> RunRecord.models (MLflow 2 models, files in the run)",
    "RunData.tags[trackbridge.summary]": "-> RunRecord.summary (where trackbridge keeps summary values)",
    "RunInputs.dataset_inputs": "-> RunRecord.inputs",
    "RunInputs.model_inputs": "not carried: the logged models a run used as input are not linked by a copy "
                              "(RunRecord.unread names them)",
    "RunOutputs.model_outputs": "-> RunRecord.models (the run's logged models)",
    "Metric.key": "-> MetricPoint series key / MetricSummary.key",
    "Metric.value": "-> MetricPoint.value (NaN and +-inf kept)",
    "Metric.step": "-> MetricPoint.step",
    "Metric.timestamp": "-> MetricPoint.timestamp",
    "Metric.run_id": "-> the run the point belongs to",
    "Metric.model_id": "-> LoggedModel.metrics (latest value per key of the model's metrics)",
    "Metric.dataset_name": "not carried: the dataset a model metric was computed on (RunRecord.unread)",
    "Metric.dataset_digest": "not carried: the dataset a model metric was computed on (RunRecord.unread)",
    "Param.key": "-> RunRecord.params key",
    "Param.value": "-> RunRecord.params value",
    "RunTag.key": "-> RunRecord.tags key",
    "RunTag.value": "-> RunRecord.tags value",
    "FileInfo.path": "-> ArtifactInfo.path",
    "FileInfo.file_size": "-> ArtifactInfo.size",
    "FileInfo.is_dir": "-> folders are walked: every file is listed",
    # -- datasets ----------------------------------------------------------------
    "DatasetInput.dataset": "-> DatasetInput (the Dataset.* rows)",
    "DatasetInput.tags": "-> DatasetInput.tags (mlflow.data.context included)",
    "InputTag.key": "-> DatasetInput.tags key",
    "InputTag.value": "-> DatasetInput.tags value",
    "Dataset.name": "-> DatasetInput.name",
    "Dataset.digest": "-> DatasetInput.digest",
    "Dataset.source_type": "-> DatasetInput.source_type",
    "Dataset.source": "-> DatasetInput.source",
    "Dataset.schema": "-> DatasetInput.schema",
    "Dataset.profile": "-> DatasetInput.profile",
    # -- experiments ---------------------------------------------------------------
    "Experiment.experiment_id": "-> Experiment.id",
    "Experiment.name": "-> Experiment.name / RunRecord.experiment",
    "Experiment.tags": "-> Experiment.tags",
    "ExperimentTag.key": "-> Experiment.tags key",
    "ExperimentTag.value": "-> Experiment.tags value",
    "Experiment.artifact_location": "not carried: where this store keeps the experiment's files",
    "Experiment.creation_time": _OWN,
    "Experiment.last_update_time": _OWN,
    "Experiment.lifecycle_stage": "not carried: deleted experiments are not read",
    "Experiment.workspace": _WORKSPACES,
    "Experiment.trace_location": _GENAI,
    "Experiment.effective_trace_archival_retention": _GENAI,
    # -- logged models -------------------------------------------------------------
    "LoggedModel.model_id": "-> LoggedModel.model_id (a copy names it in tag trackbridge.source.model_id)",
    "LoggedModel.name": "-> LoggedModel.name (repeats within a run; artifact_path is unique)",
    "LoggedModel.source_run_id": "-> the RunRecord.models list that holds the model",
    "LoggedModel.experiment_id": "-> the run's experiment",
    "LoggedModel.params": "-> LoggedModel.params",
    "LoggedModel.metrics": "-> LoggedModel.metrics (latest value per key; each point's dataset and run are "
                           "not carried: RunRecord.unread)",
    "LoggedModel.tags": "-> LoggedModel.tags (but mlflow.modelVersions, below)",
    "LoggedModel.tags[mlflow.modelVersions]": "not carried: MLflow's list of the registry versions made from "
                                              "the model; the destination writes its own as versions are made",
    "LoggedModel.model_type": "-> LoggedModel.model_type",
    "LoggedModel.status": "-> LoggedModel.status",
    "LoggedModel.status_message": "not carried: the canonical model keeps the status, not its message",
    "LoggedModel.artifact_location": "not carried: where this store keeps the model's files; the files are "
                                     "copied (Reader.download_model)",
    "LoggedModel.model_uri": _DERIVED + " (models:/<model_id>)",
    "LoggedModel.creation_timestamp": _OWN + " (models are logged in their creation order)",
    "LoggedModel.last_updated_timestamp": _OWN,
    "LoggedModelParameter.key": "-> LoggedModel.params key",
    "LoggedModelParameter.value": "-> LoggedModel.params value",
    "LoggedModelTag.key": "-> LoggedModel.tags key",
    "LoggedModelTag.value": "-> LoggedModel.tags value",
    "LoggedModelOutput.model_id": "-> LoggedModel.model_id of the run's models",
    "LoggedModelOutput.step": "not carried: the step a model was logged at; copies are logged at step 0 "
                              "(RunRecord.unread)",
    "LoggedModelInput.model_id": "not carried: see RunInputs.model_inputs",
    # -- registry ------------------------------------------------------------------
    "RegisteredModel.name": "-> RegisteredModel.name",
    "RegisteredModel.description": "-> RegisteredModel.description",
    "RegisteredModel.tags": "-> RegisteredModel.tags",
    "RegisteredModel.aliases": "-> ModelVersion.aliases",
    "RegisteredModel.latest_versions": _DERIVED + " (the latest version per stage)",
    "RegisteredModel.creation_timestamp": _OWN,
    "RegisteredModel.last_updated_timestamp": _OWN,
    "RegisteredModel.deployment_job_id": _DEPLOY,
    "RegisteredModel.deployment_job_state": _DEPLOY,
    "RegisteredModel.workspace": _WORKSPACES,
    "RegisteredModelTag.key": "-> RegisteredModel.tags key",
    "RegisteredModelTag.value": "-> RegisteredModel.tags value",
    "RegisteredModelAlias.alias": "-> ModelVersion.aliases",
    "RegisteredModelAlias.version": "-> the ModelVersion holding the alias",
    "ModelVersion.name": "-> ModelVersion.name",
    "ModelVersion.version": "-> ModelVersion.version (created in source order: N stays N in an empty "
                            "registry; tag trackbridge.source.version names it)",
    "ModelVersion.source": "-> ModelVersion.source (re-pointed to the copied run or model)",
    "ModelVersion.run_id": "-> ModelVersion.run_id (re-pointed to the run's copy)",
    "ModelVersion.model_id": "-> ModelVersion.model_id (re-pointed to the model's copy)",
    "ModelVersion.description": "-> ModelVersion.description",
    "ModelVersion.tags": "-> ModelVersion.tags",
    "ModelVersion.aliases": "-> ModelVersion.aliases",
    "ModelVersion.current_stage": "-> ModelVersion.stage (MLflow's 'None' is None)",
    "ModelVersion.creation_timestamp": "-> ModelVersion.creation_time (read; a copy has its own)",
    "ModelVersion.last_updated_timestamp": _OWN,
    "ModelVersion.user_id": _OWN + " (who registered the copy)",
    "ModelVersion.status": "not carried: the registration's progress (READY once made); the destination "
                           "reports its own",
    "ModelVersion.status_message": "not carried: see ModelVersion.status",
    "ModelVersion.run_link": "not carried: a link into the source's UI, meaningless at the destination",
    "ModelVersion.metrics": _DERIVED + " (the logged model's metrics, carried on LoggedModel)",
    "ModelVersion.params": _DERIVED + " (the logged model's params, carried on LoggedModel)",
    "ModelVersion.deployment_job_state": _DEPLOY,
    "ModelVersion.workspace": _WORKSPACES,
    "ModelVersionTag.key": "-> ModelVersion.tags key",
    "ModelVersionTag.value": "-> ModelVersion.tags value",
    # -- other kinds of mlflow.entities ------------------------------------------------
    "ModelVersionSearch": "-> as ModelVersion (the rows above): what a search answers",
    "RegisteredModelSearch": "-> as RegisteredModel (the rows above): what a search answers",
    "ModelVersionDeploymentJobState": _DEPLOY,
    "RegisteredModelDeploymentJobState": _DEPLOY,
    "Prompt": _PROMPTS,
    "PromptVersion": _PROMPTS,
    "PromptModelConfig": _PROMPTS,
    **{kind: _GENAI for kind in (
        "Assessment", "AssessmentError", "AssessmentSource", "AssessmentSourceType", "Document",
        "Expectation", "Feedback", "Issue", "IssueReference", "IssueSeverity", "IssueStatus", "Link",
        "LiveSpan", "NoOpSpan", "ScorerVersion", "Session", "Span", "SpanEvent", "SpanLogLevel",
        "SpanStatus", "SpanStatusCode", "SpanType", "Trace", "TraceArchivalConfig", "TraceData",
        "TraceInfo", "TraceLocation", "TraceLocationType", "TraceState", "InferenceTableLocation",
        "MlflowExperimentLocation", "UCSchemaLocation", "UnityCatalog")},
    **{kind: _EVAL_DATA for kind in ("DatasetRecord", "DatasetRecordSource", "DatasetRecordSourceType")},
    **{kind: _GATEWAY for kind in (
        "BudgetAction", "BudgetDuration", "BudgetDurationUnit", "BudgetTargetScope", "BudgetUnit",
        "ConnectOptionSettings", "FallbackConfig", "FallbackStrategy", "GatewayBudgetPolicy",
        "GatewayEndpoint", "GatewayEndpointBinding", "GatewayEndpointModelConfig",
        "GatewayEndpointModelMapping", "GatewayEndpointTag", "GatewayGuardrail", "GatewayGuardrailConfig",
        "GatewayModelDefinition", "GatewayModelLinkageType", "GatewayResourceType", "GatewaySecretInfo",
        "GuardrailAction", "GuardrailStage", "MCPAccessEndpoint", "MCPRemoteTransportType", "MCPServer",
        "MCPServerVersion", "MCPStatus", "MCPTool", "RoutingStrategy")},
    **{kind: _WORKSPACES for kind in (
        "Webhook", "WebhookEvent", "WebhookStatus", "WebhookTestResult", "Workspace", "WorkspaceDeletionMode")},
    **{kind: _VALUE for kind in (
        "EntityAssociationType", "LifecycleStage", "LoggedModelStatus", "RunStatus", "SourceType", "ViewType")},
}
