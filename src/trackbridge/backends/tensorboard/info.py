"""Registry entry of the TensorBoard source (no import of tensorboard or tensorboardX)."""
from trackbridge.backends.base import BackendInfo

INFO = BackendInfo(
    name="tensorboard",
    target="trackbridge.backends.tensorboard.backend:TensorboardBackend",
    extra="tensorboard",
    # the Event protobuf classes come from tensorboardX (small) or tensorboard, whichever is installed
    sdk_distribution="tensorboardX",
    path_remote=True,
    read_only=True,
    summary="TensorBoard event files, a folder tree of runs, tensorboard:PATH",
)
