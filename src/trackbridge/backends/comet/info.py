"""Registry entries of the Comet backends (no import of comet_ml)."""
from trackbridge.backends.base import BackendInfo

ENV_VARS = {
    "COMET_API_KEY": True,
    "COMET_WORKSPACE": False,
    "COMET_PROJECT_NAME": False,
    "COMET_URL_OVERRIDE": False,
}

INFO = BackendInfo(
    name="comet",
    target="trackbridge.backends.comet.backend:CometBackend",
    extra="comet",
    sdk_distribution="comet_ml",
    env_vars=ENV_VARS,
    summary="Comet cloud or self-hosted Comet, comet[:WORKSPACE/PROJECT]",
)

OFFLINE_INFO = BackendInfo(
    name="comet-offline",
    target="trackbridge.backends.comet.backend:CometOfflineBackend",
    extra="comet",
    sdk_distribution="comet_ml",
    path_remote=True,
    summary="Comet offline archives (what `comet upload` uploads), comet-offline:PATH",
)
