"""Hugging Face ``Trainer`` with ``TrackbridgeCallback``: a tiny BERT built from a config in
code (no hub download), trained on CPU, read back from embedded MLflow (training
arguments and model config as params, losses by global step, checkpoints as artifacts,
the status) and from W&B offline runs."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("accelerate")

from mlflow import MlflowClient  # noqa: E402

from facade_helpers import stop_facade_workers  # noqa: E402,F401  (autouse fixture)
from wandb_helpers import sdk_sockets  # noqa: E402,F401  (fixture)

from trackbridge.backends import get_backend  # noqa: E402
from trackbridge.integrations.huggingface import TrackbridgeCallback  # noqa: E402

EXAMPLES, BATCH, EPOCHS = 16, 4, 2
STEPS = EXAMPLES // BATCH * EPOCHS


class Pairs(torch.utils.data.Dataset):
    """Token sequences whose label is whether token 1 occurs."""

    def __init__(self) -> None:
        generator = torch.Generator().manual_seed(0)
        self.ids = torch.randint(2, 30, (EXAMPLES, 8), generator=generator)
        self.ids[::2, 3] = 1
        self.labels = (self.ids == 1).any(dim=1).long()

    def __len__(self) -> int:
        return EXAMPLES

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "attention_mask": torch.ones(8, dtype=torch.long), "labels": self.labels[i]}


def _train(tmp_path: Path, callback: TrackbridgeCallback) -> transformers.Trainer:
    transformers.set_seed(0)
    config = transformers.BertConfig(vocab_size=32, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=16, max_position_embeddings=16, num_labels=2)
    args = transformers.TrainingArguments(
        output_dir=str(tmp_path / "out"), num_train_epochs=EPOCHS, per_device_train_batch_size=BATCH,
        learning_rate=1e-3, logging_steps=1, save_strategy="steps", save_steps=4, report_to=[], use_cpu=True,
        disable_tqdm=True,
    )
    trainer = transformers.Trainer(model=transformers.BertForSequenceClassification(config), args=args,
                                   train_dataset=Pairs(), callbacks=[callback])
    trainer.train()
    return trainer


def test_training_arrives_in_embedded_mlflow(isolated_env: Path, tmp_path: Path) -> None:
    callback = TrackbridgeCallback(project="hf", name="tiny-bert")
    trainer = _train(tmp_path, callback)
    assert callback.run.finished
    client = MlflowClient(f"sqlite:///{isolated_env / 'mlflow.db'}")
    found = client.get_run(callback.run.remote_ids["mlflow"])
    assert found.info.status == "FINISHED" and found.info.run_name == "tiny-bert"
    params = found.data.params
    assert params["args.learning_rate"] == "0.001" and params["args.num_train_epochs"] == str(EPOCHS)
    assert params["model_config.hidden_size"] == "8" and params["model_config.model_type"] == "bert"
    losses = client.get_metric_history(found.info.run_id, "loss")
    assert sorted(m.step for m in losses) == list(range(1, STEPS + 1))
    logged = {e["step"]: e["loss"] for e in trainer.state.log_history if "loss" in e}
    assert {m.step: m.value for m in losses} == pytest.approx(logged)
    assert "train_runtime" in found.data.metrics  # the last log's numbers too
    files = {a.path for a in client.list_artifacts(found.info.run_id, "checkpoints/checkpoint-4")}
    assert "checkpoints/checkpoint-4/model.safetensors" in files and "checkpoints/checkpoint-4/config.json" in files
    assert {a.path for a in client.list_artifacts(found.info.run_id, "checkpoints")} == {
        f"checkpoints/checkpoint-{step}" for step in range(4, STEPS + 1, 4)}


def test_training_arrives_in_wandb_offline(isolated_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                           sdk_sockets: None) -> None:  # noqa: F811
    monkeypatch.setenv("TRACKBRIDGE_BACKEND", "wandb")
    _train(tmp_path, TrackbridgeCallback(project="hf", name="tiny-bert", log_checkpoints=False))
    reader = get_backend("wandb-offline", {"path": str(Path(os.environ["WANDB_DIR"]) / "wandb")}).reader()
    [record] = list(reader.list_runs("hf"))
    assert record.params["args"]["learning_rate"] == 0.001 and record.params["model_config"]["hidden_size"] == 8
    losses = [p for page in reader.iter_metric_history(record.run_id, "loss") for p in page]
    assert sorted(p.step for p in losses) == list(range(1, STEPS + 1))
    assert record.status.value == "FINISHED"
