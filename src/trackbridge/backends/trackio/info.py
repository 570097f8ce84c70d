"""Registry entry of the Trackio backend (no import of trackio: its import loads gradio's client)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="trackio",
    target="trackbridge.backends.trackio.backend:TrackioBackend",
    extra="trackio",
    sdk_distribution="trackio",
    env_vars={"TRACKIO_DIR": False},
    path_remote=True,
    default_path=True,  # `trackio` alone: $TRACKIO_DIR, else $HF_HOME/trackio, as trackio itself
    summary="Trackio project databases (<project>.db, what `trackio show` shows), trackio:PATH",
)
