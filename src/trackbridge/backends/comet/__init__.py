"""Comet backend: Comet's cloud or a self-hosted Comet (``comet``), and offline
archives (``comet-offline:PATH``).  No module here imports comet_ml at import time."""
