"""Lightning through ``TrackbridgeLogger``: a tiny real LightningModule trained on CPU,
read back from embedded MLflow (hyper-parameters, metrics by global step, checkpoints as
artifacts, the best checkpoint as the logged model, the status) and from W&B offline runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pl = pytest.importorskip("lightning.pytorch")

from mlflow import MlflowClient  # noqa: E402

from facade_helpers import stop_facade_workers  # noqa: E402,F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: E402,F401  (fixture)

from trackbridge.backends import get_backend  # noqa: E402
from trackbridge.integrations.lightning import TrackbridgeLogger  # noqa: E402

EPOCHS, BATCHES = 2, 4


class Tiny(pl.LightningModule):
    def __init__(self, lr: float = 0.05, hidden: int = 4, optimizer: type = torch.optim.SGD) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.net = torch.nn.Sequential(torch.nn.Linear(3, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 1))

    def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = torch.nn.functional.mse_loss(self.net(x), y)
        self.log("train_loss", loss)
        return loss

    def validation_step(self, batch: tuple, batch_idx: int) -> None:
        x, y = batch
        self.log("val_loss", torch.nn.functional.mse_loss(self.net(x), y))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return self.hparams.optimizer(self.parameters(), lr=self.hparams.lr)


def _loader() -> torch.utils.data.DataLoader:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(BATCHES * 8, 3, generator=generator)
    return torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, x.sum(dim=1, keepdim=True)), batch_size=8)


def _fit(logger: TrackbridgeLogger, root: Path) -> pl.Trainer:
    pl.seed_everything(0, verbose=False)
    trainer = pl.Trainer(max_epochs=EPOCHS, logger=logger, log_every_n_steps=1, accelerator="cpu",
                         default_root_dir=str(root), enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[pl.callbacks.ModelCheckpoint(monitor="val_loss", save_top_k=1, save_last=True)])
    trainer.fit(Tiny(), _loader(), _loader())
    return trainer


def test_fit_arrives_in_embedded_mlflow(isolated_env: Path, tmp_path: Path) -> None:
    logger = TrackbridgeLogger(project="lightning", name="tiny")
    trainer = _fit(logger, tmp_path / "root")
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    [found] = client.search_runs([client.get_experiment_by_name("lightning").experiment_id])
    assert found.info.run_name == "tiny" and found.info.status == "FINISHED"
    assert logger.version == found.data.tags["trackbridge.local_run_id"] and logger.name == "lightning"
    assert found.data.params["lr"] == "0.05" and found.data.params["hidden"] == "4"
    assert found.data.params["optimizer"] == str(torch.optim.SGD)
    train = client.get_metric_history(found.info.run_id, "train_loss")
    assert sorted(m.step for m in train) == list(range(EPOCHS * BATCHES))
    val = client.get_metric_history(found.info.run_id, "val_loss")
    assert len(val) == EPOCHS and trainer.callback_metrics["val_loss"].item() == pytest.approx(val[-1].value)
    files = {a.path for a in client.list_artifacts(found.info.run_id, "checkpoints")}
    best = Path(trainer.checkpoint_callback.best_model_path).name
    assert {"checkpoints/last.ckpt", f"checkpoints/{best}"} <= files, files  # and each earlier best as it came
    [model] = client.search_logged_models([found.info.experiment_id])
    assert model.source_run_id == found.info.run_id and model.name == "model"


def test_a_failed_fit_is_failed(isolated_env: Path, tmp_path: Path) -> None:
    class Broken(Tiny):
        def training_step(self, batch: tuple, batch_idx: int) -> torch.Tensor:
            if self.global_step == 2:
                raise RuntimeError("nan everywhere")
            return super().training_step(batch, batch_idx)

    logger = TrackbridgeLogger(project="lightning-fail", log_checkpoints=False)
    trainer = pl.Trainer(max_epochs=1, logger=logger, log_every_n_steps=1, accelerator="cpu",
                         default_root_dir=str(tmp_path), enable_progress_bar=False, enable_model_summary=False)
    with pytest.raises(RuntimeError):
        trainer.fit(Broken(), _loader())
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    [found] = client.search_runs([client.get_experiment_by_name("lightning-fail").experiment_id])
    assert found.info.status == "FAILED"
    assert sorted(m.step for m in client.get_metric_history(found.info.run_id, "train_loss")) == [0, 1]


def test_fit_arrives_in_wandb_offline(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                      sdk_sockets: None) -> None:  # noqa: F811
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    _fit(TrackbridgeLogger(project="lightning", name="tiny", log_model=False), tmp_path / "root")
    reader = get_backend("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}).reader()
    [record] = list(reader.list_runs("lightning"))
    assert record.params["lr"] == 0.05 and record.status.value == "FINISHED"
    train = [p for page in reader.iter_metric_history(record.run_id, "train_loss") for p in page]
    assert sorted(p.step for p in train) == list(range(EPOCHS * BATCHES))
    assert any(a.path.startswith("checkpoints/") for a in reader.list_artifacts(record.run_id))
