"""Lightning logged through trackbridge: a tiny regression model on synthetic data, CPU.

    python examples/integrations/lightning_fit.py
    TRACKBRIDGE_BACKEND=comet-offline:./comet-offline python examples/integrations/lightning_fit.py

Hyper-parameters, train/val losses by global step, the checkpoints as artifacts and the
best checkpoint as the logged model arrive in whichever tracker TRACKBRIDGE_BACKEND names.
"""
from __future__ import annotations

import os
import tempfile

import lightning.pytorch as pl
import torch

from trackbridge.integrations.lightning import TrackbridgeLogger

os.environ.setdefault("WANDB_MODE", "offline")


class Regressor(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 16) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        loss = torch.nn.functional.mse_loss(self.net(batch[0]), batch[1])
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)


def loader(n: int, seed: int) -> torch.utils.data.DataLoader:
    x = torch.rand(n, 4, generator=torch.Generator().manual_seed(seed))
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=16)


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as root:  # checkpoints are logged: no need to keep them here
        trainer = pl.Trainer(max_epochs=5, accelerator="cpu", default_root_dir=root, log_every_n_steps=5,
                             enable_progress_bar=False,
                             logger=TrackbridgeLogger(project="lightning-example", name="regressor"),
                             callbacks=[pl.callbacks.ModelCheckpoint(monitor="val_loss", save_last=True)])
        trainer.fit(Regressor(), loader(256, 0), loader(64, 1))
    print(f"logged to {os.environ.get('TRACKBRIDGE_BACKEND', 'mlflow')}")
