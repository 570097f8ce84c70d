"""Weights & Biases backend: the cloud or a W&B server (``wandb``), and offline run
folders (``wandb-offline:PATH``).  No module here imports wandb at import time."""
