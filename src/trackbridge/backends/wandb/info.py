"""Registry entries of the W&B backends (no import of wandb)."""
from trackbridge.backends.base import BackendInfo

ENV_VARS = {
    "WANDB_API_KEY": True,
    "WANDB_ENTITY": False,
    "WANDB_PROJECT": False,
    "WANDB_BASE_URL": False,
    "WANDB_MODE": False,
    "WANDB_ORGANIZATION": False,
}

INFO = BackendInfo(
    name="wandb",
    target="trackbridge.backends.wandb.backend:WandbBackend",
    extra="wandb",
    sdk_distribution="wandb",
    env_vars=ENV_VARS,
    summary="Weights & Biases cloud or server, wandb[:ENTITY/PROJECT]",
)

OFFLINE_INFO = BackendInfo(
    name="wandb-offline",
    target="trackbridge.backends.wandb.backend:WandbOfflineBackend",
    extra="wandb",
    sdk_distribution="wandb",
    path_remote=True,
    summary="W&B offline run folders (what `wandb sync` uploads), wandb-offline:PATH",
)
