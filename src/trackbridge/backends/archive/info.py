"""Registry entry of the vendor-neutral archive, ``dir:PATH``."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="dir",
    target="trackbridge.backends.archive.backend:ArchiveBackend",
    sdk_distribution="pyarrow",
    path_remote=True,
    summary="vendor-neutral archive folder (JSON + Parquet), dir:PATH",
)
