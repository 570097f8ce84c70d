"""Keras 3 logged through trackbridge: a small regression MLP on synthetic data.

    KERAS_BACKEND=jax python examples/integrations/keras_fit.py     # or torch / tensorflow
    TRACKBRIDGE_BACKEND=wandb python examples/integrations/keras_fit.py

Params (epochs, steps, optimizer config), batch and epoch metrics, and the trained model
(``.keras``) arrive in whichever tracker TRACKBRIDGE_BACKEND names (default: ./mlflow.db).
"""
from __future__ import annotations

import os

os.environ.setdefault("WANDB_MODE", "offline")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from trackbridge.integrations.keras import TrackbridgeCallback  # noqa: E402

rng = np.random.default_rng(0)
x = rng.random((512, 8), dtype=np.float32)
y = x @ rng.normal(size=(8, 1)).astype(np.float32) + 0.1 * rng.normal(size=(512, 1)).astype(np.float32)

model = keras.Sequential([keras.Input((8,)), keras.layers.Dense(32, activation="relu"), keras.layers.Dense(1)],
                         name="mlp")
model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse", metrics=["mae"])
model.fit(x, y, epochs=10, batch_size=32, validation_split=0.2, verbose=0,
          callbacks=[TrackbridgeCallback(project="keras-example", name="mlp", log_every_n_batches=4)])
print(f"logged to {os.environ.get('TRACKBRIDGE_BACKEND', 'mlflow')} (Keras backend {keras.backend.backend()})")
