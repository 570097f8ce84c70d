"""Hugging Face ``Trainer`` logged through trackbridge: a tiny BERT built from a config in
code (nothing downloaded), trained on CPU to spot a token in random sequences.

    python examples/integrations/huggingface_trainer.py
    TRACKBRIDGE_BACKEND=mlflow,wandb python examples/integrations/huggingface_trainer.py   # both at once

Training arguments and the model config as params, losses and learning rate by global
step, and each checkpoint folder as artifacts arrive in whichever tracker
TRACKBRIDGE_BACKEND names.
"""
from __future__ import annotations

import os
import tempfile

import torch
from transformers import BertConfig, BertForSequenceClassification, Trainer, TrainingArguments

from trackbridge.integrations.huggingface import TrackbridgeCallback

os.environ.setdefault("WANDB_MODE", "offline")


class Sequences(torch.utils.data.Dataset):
    """Random token sequences; the label says whether token 1 occurs."""

    def __init__(self, n: int, seed: int) -> None:
        self.ids = torch.randint(2, 64, (n, 16), generator=torch.Generator().manual_seed(seed))
        self.ids[::2, 5] = 1
        self.labels = (self.ids == 1).any(dim=1).long()

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> dict[str, torch.Tensor]:
        return {"input_ids": self.ids[i], "labels": self.labels[i]}


if __name__ == "__main__":
    config = BertConfig(vocab_size=64, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=32, num_labels=2)
    with tempfile.TemporaryDirectory() as out:
        args = TrainingArguments(output_dir=out, num_train_epochs=3, per_device_train_batch_size=16,
                                 learning_rate=1e-3, logging_steps=5, eval_strategy="epoch", save_strategy="epoch",
                                 report_to=[], use_cpu=True, disable_tqdm=True)
        Trainer(model=BertForSequenceClassification(config), args=args, train_dataset=Sequences(256, 0),
                eval_dataset=Sequences(64, 1),
                callbacks=[TrackbridgeCallback(project="hf-example", name="tiny-bert")]).train()
    print(f"logged to {os.environ.get('TRACKBRIDGE_BACKEND', 'mlflow')}")
