"""Registry entry of the Neptune export source (no import of pyarrow)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="neptune-export",
    target="trackbridge.backends.neptune_export.backend:NeptuneExportBackend",
    sdk_distribution="pyarrow",
    path_remote=True,
    read_only=True,
    summary="what neptune-exporter wrote (data/ parquet parts + files/), neptune-export:PATH",
)
