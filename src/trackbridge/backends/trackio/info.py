"""Registry entry of the Trackio backend (no import of trackio: its import loads gradio's client)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="trackio",
    target="trackbridge.backends.trackio.backend:TrackioBackend",
    extra="trackio",
    sdk_distribution="trackio",
    env_vars={"TRACKIO_DIR": False},
    path_remote=True,
    # read only until the writer lands: a copy into trackio must be what `trackio show` shows
    read_only=True,
    summary="Trackio project databases (<project>.db, what `trackio show` reads), trackio:PATH",
)
