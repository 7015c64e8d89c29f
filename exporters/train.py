"""Seeded training with Adam and early stopping on a validation split (the study's recipe)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from evaluator.datasets import Split
from evaluator.errors import EvaluatorError
from evaluator.limits import MAX_EPOCHS
from evaluator.progress import Progress, SilentProgress
from evaluator.torch_device import current_training_device


@dataclass(frozen=True)
class TrainConfig:
    """Adam at `learning_rate`; stop after `patience` epochs without a better validation accuracy."""

    epochs: int = 30
    batch_size: int = 128
    learning_rate: float = 1e-3
    patience: int = 3
    seed: int = 0
    augment: bool = False  # flip + pad-crop, for colour data

    def __post_init__(self) -> None:
        if self.epochs > MAX_EPOCHS:
            raise EvaluatorError(f"epochs must be at most {MAX_EPOCHS:,}, got {self.epochs:,}")


@dataclass(frozen=True)
class TrainResult:
    epochs_run: int
    best_epoch: int
    validation_accuracy: float


def seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))
    torch.use_deterministic_algorithms(True, warn_only=True)


def accuracy(model: nn.Module, split: Split, batch_size: int = 1000) -> float:
    """Top-1 accuracy of `model` (in eval mode, on the device of its parameters) on `split`."""
    model.eval()
    device = next(model.parameters()).device
    correct = 0
    with torch.no_grad():
        for start in range(0, len(split), batch_size):
            x = torch.from_numpy(split.x[start:start + batch_size]).to(device)
            y = torch.from_numpy(split.y[start:start + batch_size]).to(device)
            correct += int((model(x).argmax(1) == y).sum())
    return correct / max(1, len(split))


def augment_batch(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Random horizontal flip and 4-pixel pad-and-crop; x: (N, C, H, W)."""
    n, _, h, w = x.shape
    flip = torch.rand(n, generator=generator) < 0.5
    x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
    padded = nn.functional.pad(x, (4, 4, 4, 4))
    dy, dx = torch.randint(0, 9, (2,), generator=generator).tolist()
    return padded[:, :, dy:dy + h, dx:dx + w]


def train_model(model: nn.Module, train: Split, validation: Split, config: TrainConfig, progress: Progress = SilentProgress(),
                description: str = "training", after_step: Callable[[], None] | None = None) -> TrainResult:
    """Train `model` in place; at the end it holds the weights of its best validation epoch.

    `after_step` runs after every optimizer step (pruning masks use it to keep zeroed weights at zero). The model
    trains on the device training_device chose (the CPU by default) and is handed back on the CPU; batch order and
    augmentation draw from a CPU generator, so a seed picks the same batches on any device.
    """
    seed_everything(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    device = current_training_device()
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
    loss_fn = nn.CrossEntropyLoss()
    x_all, y_all = torch.from_numpy(train.x), torch.from_numpy(train.y)
    batches = (len(train) + config.batch_size - 1) // config.batch_size
    task = progress.task(description, config.epochs * batches)
    best_accuracy, best_epoch, best_state = -1.0, 0, copy.deepcopy(model.state_dict())
    epoch = 0
    for epoch in range(1, config.epochs + 1):
        model.train()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), config.batch_size):
            index = order[start:start + config.batch_size]
            x, y = x_all[index], y_all[index]
            if config.augment:
                x = augment_batch(x, generator)
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            optimizer.step()
            if after_step is not None:
                after_step()
            task.advance()
        validation_accuracy = accuracy(model, validation)
        task.describe(f"{description} (epoch {epoch}, val {validation_accuracy:.3f})")
        if validation_accuracy > best_accuracy:
            best_accuracy, best_epoch, best_state = validation_accuracy, epoch, copy.deepcopy(model.state_dict())
        elif epoch - best_epoch >= config.patience:
            break
    task.finish()
    model.load_state_dict(best_state)
    model.to("cpu")
    model.eval()
    return TrainResult(epoch, best_epoch, best_accuracy)
