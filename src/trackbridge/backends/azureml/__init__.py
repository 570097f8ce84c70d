"""Azure ML backend: MLflow tracking behind an Azure ML workspace, through the
``azureml-mlflow`` plugin.  No module here imports an Azure SDK at import time."""
