"""Registry entry of the Azure ML backend (no import of an Azure SDK)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="azureml",
    target="trackbridge.backends.azureml.backend:AzureMLBackend",
    extra="azure",
    sdk_distribution="azureml-mlflow",
    env_vars={
        # read by trackbridge itself: no Azure SDK reads these three.
        "AZURE_SUBSCRIPTION_ID": False,
        "AZURE_RESOURCE_GROUP": False,
        "AZUREML_WORKSPACE_NAME": False,
        # the workspace API host (private endpoints, sovereign clouds): skips the ARM lookup.
        "AZUREML_ENDPOINT": False,
        # azure-identity's service principal variables.
        "AZURE_TENANT_ID": False,
        "AZURE_CLIENT_ID": False,
        "AZURE_CLIENT_SECRET": True,
    },
    summary="Azure ML workspace tracking (MLflow through azureml-mlflow)",
)
